/**
 * A real PgBouncer (Debian's `pgbouncer`) in transaction pool mode in front of the test PostgreSQL,
 * started on a free port in a temporary directory and stopped after: what Supabase's pooler on port
 * 6543 is. A transaction-mode pooler hands each transaction (or each statement outside one) to
 * whichever server connection is free, so anything a query leaves on its session (a named prepared
 * statement, a session advisory lock, SET) is seen, or missed, by other clients' statements.
 *
 * PgBouncer missing: its tests are skipped with a message, or fail under REQUIRE_SERVICES=1 (CI).
 * The benchmark starts one too (bench/pooled-server.ts), so this file imports nothing that probes
 * services at load.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync, chmodSync, readFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "./closed-port.js";

const CANDIDATES = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"];

/** The pgbouncer executable, or undefined when it is not installed. */
export function findPgBouncer(): string | undefined {
  const onPath = spawnSync("sh", ["-c", "command -v pgbouncer"], { encoding: "utf8" }).stdout.trim();
  if (onPath) return onPath;
  return CANDIDATES.find((candidate) => existsSync(candidate));
}

/** The executable when installed; else undefined with a warning, or a thrown error under REQUIRE_SERVICES=1. */
export function requirePgBouncer(required = process.env.REQUIRE_SERVICES === "1", find = findPgBouncer): string | undefined {
  const found = find();
  if (!found && required) throw new Error("pgbouncer is required (REQUIRE_SERVICES=1) but is not installed: apt-get install -y pgbouncer");
  if (!found) console.warn("[tests] pgbouncer is not installed (apt-get install -y pgbouncer): its tests are skipped");
  return found;
}

export interface PgBouncerOptions {
  /** The PostgreSQL it pools (host, port and user are taken from it). */
  upstreamUrl: string;
  /** Server connections per database and user: small, so clients share them (default 4). */
  poolSize?: number;
  poolMode?: "transaction" | "session" | "statement";
}

export interface PgBouncer {
  readonly port: number;
  /** `databaseUrl` (a database on the upstream server) with its host and port pointed at this pooler. */
  urlFor(databaseUrl: string): string;
  /** PgBouncer's own log, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

function waitForPort(port: number, child: ChildProcess, logFile: string, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (child.exitCode !== null) {
        reject(new Error(`pgbouncer exited (${child.exitCode}): ${readLog(logFile)}`));
        return;
      }
      const socket = net.connect({ host: "127.0.0.1", port });
      socket.once("connect", () => {
        socket.destroy();
        resolve();
      });
      socket.once("error", () => {
        socket.destroy();
        if (Date.now() - started > timeoutMs) reject(new Error(`pgbouncer did not listen in ${timeoutMs} ms: ${readLog(logFile)}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

function readLog(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "(no log)";
  }
}

/** Starts PgBouncer; `stop()` kills it and removes its directory. */
export async function startPgBouncer(executable: string, options: PgBouncerOptions): Promise<PgBouncer> {
  const upstream = new URL(options.upstreamUrl);
  const user = decodeURIComponent(upstream.username || "postgres");
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "gc-pgbouncer-"));
  // PgBouncer refuses to run as root; as root it runs as `postgres`, which must read and write here.
  const asUser = process.getuid?.() === 0 ? ["-u", "postgres"] : [];
  chmodSync(dir, 0o777);
  const logFile = path.join(dir, "pgbouncer.log");
  const authFile = path.join(dir, "userlist.txt");
  const iniFile = path.join(dir, "pgbouncer.ini");
  writeFileSync(authFile, `"${user}" ""\n`, { mode: 0o644 });
  writeFileSync(
    iniFile,
    [
      "[databases]",
      `* = host=${upstream.hostname} port=${upstream.port || 5432}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${authFile}`,
      `pool_mode = ${options.poolMode ?? "transaction"}`,
      `default_pool_size = ${options.poolSize ?? 4}`,
      "max_client_conn = 500",
      `logfile = ${logFile}`,
      "ignore_startup_parameters = extra_float_digits,options",
      "",
    ].join("\n"),
    { mode: 0o644 },
  );
  const child = spawn(executable, [...asUser, iniFile], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  try {
    await waitForPort(port, child, logFile);
  } catch (err) {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n${stderr}`);
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  return {
    port,
    urlFor(databaseUrl: string) {
      const url = new URL(databaseUrl);
      url.hostname = "127.0.0.1";
      url.port = String(port);
      return url.toString();
    },
    log: () => readLog(logFile) + stderr,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGINT"); // PgBouncer's immediate shutdown
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
