/**
 * What tells a running process apart from one that merely got its id later. Process ids are reused
 * (after a reboot, in a restarted container where the server is pid 1 every time), so an id alone
 * cannot say that the process that wrote a lock still runs. On Linux a process's start time (in clock
 * ticks since boot) together with the boot id can: no other process gets both. Where /proc is
 * missing these are undefined and callers fall back to the id alone.
 */
import { readFileSync } from "node:fs";

/**
 * Clock ticks per second in /proc: USER_HZ, a fixed part of the kernel's interface to programs (100 on
 * every architecture Node runs on), not the kernel's own tick rate; Node cannot ask sysconf for it.
 */
const USER_HZ = 100;

/** Whether a process with this id runs now (any process: its id may have been reused). */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, under another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** When the process started, in clock ticks since boot (field 22 of /proc/<pid>/stat). */
export function processStartTicks(pid: number): number | undefined {
  const stat = readProc(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // Field 2, the command name in parentheses, may itself hold spaces and parentheses: count the
  // fields from after its closing one, where field 3 begins.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[22 - 3]);
  return Number.isSafeInteger(ticks) && ticks >= 0 ? ticks : undefined;
}

/** Changes at every boot; containers share their host's. */
export function bootId(): string | undefined {
  return readProc("/proc/sys/kernel/random/boot_id")?.trim() || undefined;
}

/** The wall-clock time of a start time in ticks since boot (the boot time, `btime`, is in /proc/stat). */
export function startedAt(startTicks: number): Date | undefined {
  const btime = Number(/^btime (\d+)$/m.exec(readProc("/proc/stat") ?? "")?.[1]);
  return Number.isSafeInteger(btime) && btime > 0 ? new Date((btime + startTicks / USER_HZ) * 1000) : undefined;
}

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    // No /proc (not Linux), or the process is gone.
    return undefined;
  }
}
