/**
 * The server under test, as its own process (`node --import tsx src/main.ts`) with production
 * settings, so what is measured is what runs in production and its memory is its own: RSS is read
 * from /proc/<pid>/status, not from the bench process that generates the load.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { freePort } from "../test/helpers/closed-port.js";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

export interface BenchServer {
  pid: number;
  url: string;
  /** Resident set size in MB, from /proc. */
  rssMb(): number;
  /**
   * What the server keeps: has it collect its garbage fully (bench-resolver.ts's benchCollectGarbage),
   * pause, and collect again, then reads its V8 heap (in use and committed) and its RSS. Why twice
   * with a pause: read right after one collection that followed load, the memory outside the V8 heap
   * came out up to 15 MB higher than after a few idle seconds and a second collection.
   */
  collectGarbage(): Promise<{ heapUsedMb: number; heapTotalMb: number; rssMb: number }>;
  /** Graceful stop (SIGTERM: in-flight requests finish, pending settlements flush). */
  stop(): Promise<void>;
}

export interface BenchServerOptions {
  databaseUrl: string;
  poolSize: number;
  jwtSecret: string;
  /** Write a CPU profile into this directory when the server exits. */
  profileDir?: string;
  /** More server settings (from BENCH_SERVER_* variables), e.g. to compare CHARGE_BATCH_IN_FLIGHT values. */
  extraEnv?: Record<string, string>;
}


/** Between the two collections of collectGarbage (see there). */
const COLLECTION_PAUSE_MS = 5_000;

function readRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) / 1024;
}

async function waitForHealth(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the server exited with code ${child.exitCode} before it answered`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`the server did not answer ${url}/health within ${timeoutMs / 1000} s`);
}

export async function startBenchServer(options: BenchServerOptions): Promise<BenchServer> {
  const port = await freePort();
  // --expose-gc only makes global.gc() callable, for benchCollectGarbage (the soak): it changes
  // nothing about how or when V8 collects otherwise.
  const nodeArgs = ["--expose-gc", "--import", "tsx"];
  if (options.profileDir) nodeArgs.push("--cpu-prof", "--cpu-prof-dir", options.profileDir);
  const child = spawn(process.execPath, [...nodeArgs, "bench/bench-main.ts"], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: "production",
      LOG_LEVEL: "warn",
      DATABASE_URL: options.databaseUrl,
      DATABASE_POOL_SIZE: String(options.poolSize),
      JWT_SECRET: options.jwtSecret,
      HOST: "127.0.0.1",
      PORT: String(port),
      // Rate limiting must not refuse the load; its own cost is still paid on every call.
      RATE_LIMIT_DEFAULT: "1000000000/1s",
      REQUEST_LIMIT: "1000000000/1s",
      ...options.extraEnv,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHealth(url, child, 60_000);
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  const pid = child.pid as number;
  return {
    pid,
    url,
    rssMb: () => readRssMb(pid),
    async collectGarbage() {
      const collect = async () => {
        const res = await fetch(`${url}/graphql`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ query: "mutation { benchCollectGarbage }" }),
        });
        const body = (await res.json()) as { data?: { benchCollectGarbage?: number[] }; errors?: unknown };
        const heap = body.data?.benchCollectGarbage;
        if (!heap) throw new Error(`benchCollectGarbage failed: HTTP ${res.status} ${JSON.stringify(body.errors)}`);
        return heap;
      };
      await collect();
      await new Promise((resolve) => setTimeout(resolve, COLLECTION_PAUSE_MS));
      const [heapUsed, heapTotal] = await collect();
      return { heapUsedMb: heapUsed / 2 ** 20, heapTotalMb: heapTotal / 2 ** 20, rssMb: readRssMb(pid) };
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      const killed = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(killed);
    },
  };
}
