/**
 * Where the CPU goes during a run: the server process, the PostgreSQL backends and this process
 * (the load generator), read from /proc before and after. On a small machine they share the same
 * cores, so this is what explains a ceiling: a scenario is as fast as the work it costs all three.
 */
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

export interface CpuSample {
  serverMs: number;
  postgresMs: number;
  benchMs: number;
}

/** A reading: PostgreSQL per process, since backends come and go (pools close idle connections). */
export interface CpuReading {
  serverMs: number;
  postgresByPid: Map<string, number>;
  benchMs: number;
}

function processCpuMs(pid: number | string): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / TICKS_PER_SECOND;
  } catch {
    return 0; // the process ended between listing and reading
  }
}

/** Backends connected to the bench database, plus the server-wide writers whose work (WAL) it causes. */
const SHARED_POSTGRES_PROCESSES = /: (walwriter|checkpointer|background writer)\b/;

function postgresCpuByPid(databaseName: string): Map<string, number> {
  const byPid = new Map<string, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() !== "postgres") continue;
      // A backend's title (its cmdline) names its database; other databases' work is someone else's.
      const title = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (!title.includes(` ${databaseName} `) && !SHARED_POSTGRES_PROCESSES.test(title)) continue;
    } catch {
      continue;
    }
    byPid.set(entry, processCpuMs(entry));
  }
  return byPid;
}

export function sampleCpu(serverPid: number, databaseName: string): CpuReading {
  const self = process.cpuUsage();
  return { serverMs: processCpuMs(serverPid), postgresByPid: postgresCpuByPid(databaseName), benchMs: (self.user + self.system) / 1000 };
}

/**
 * CPU milliseconds per request between two readings. A PostgreSQL backend that exited during the
 * run takes its time with it, so that figure is a lower bound (pools keep their connections busy
 * under load, so little is lost).
 */
export function cpuPerRequest(before: CpuReading, after: CpuReading, requests: number): CpuSample {
  const per = (ms: number) => (requests > 0 ? Math.round((ms / requests) * 1000) / 1000 : 0);
  let postgresMs = 0;
  for (const [pid, ms] of after.postgresByPid) postgresMs += ms - (before.postgresByPid.get(pid) ?? 0);
  return {
    serverMs: per(after.serverMs - before.serverMs),
    postgresMs: per(postgresMs),
    benchMs: per(after.benchMs - before.benchMs),
  };
}
