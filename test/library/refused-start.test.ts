/**
 * A createCredits that is refused leaves nothing open: its options are checked before the database is
 * opened (fast, and without a connection to close), and what it opened before a later failure (a
 * failed step after the migrations) is closed before the error is thrown. Each case runs in a child
 * process, which must exit by itself: an open pool, socket or timer would keep it alive.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "drizzle-orm";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { closedPort } from "../helpers/closed-port.js";
import { connectDatabase } from "../../src/db/connect.js";
import { adminQuery } from "../helpers/databases.js";
import { postgresAvailable, TEST_DATABASE_URL } from "../helpers/services.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const LIBRARY = fileURLToPath(new URL("../../src/library/index.ts", import.meta.url));

interface Exit {
  /** null when the child had to be killed: something kept it alive. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** How long createCredits took to refuse (undefined when it did not). */
  tookMs?: number;
  /** From createCredits' answer to the child's exit: what it left open kept it alive that long. */
  lingeredMs?: number;
}

/** Longest a child may live on after its answer: a pool's idle connections alone would keep it 10 s. */
const EXIT_AFTER_ANSWER_MS = 3_000;

/**
 * Runs `createCredits(<options>)` in a child process, prints the refusal's message and lets the
 * process end on its own; killed after `limitMs` (code null) when something keeps it alive.
 */
function refusedInChild(options: string, limitMs = 15_000): Promise<Exit> {
  const script = `
    const { createCredits } = await import(${JSON.stringify(LIBRARY)});
    const { createLogger } = await import(${JSON.stringify(fileURLToPath(new URL("../../src/observability/logger.ts", import.meta.url)))});
    const started = performance.now();
    try {
      await createCredits({ logger: createLogger("silent"), ...${options} });
      console.log("STARTED");
    } catch (err) {
      console.log("TOOK " + Math.round(performance.now() - started) + "ms");
      console.log("REFUSED " + err.message);
    }
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let answeredAt: number | undefined;
  child.stdout.on("data", (chunk) => {
    stdout += chunk;
    if (answeredAt === undefined && /REFUSED|STARTED/.test(stdout)) answeredAt = Date.now();
  });
  child.stderr.on("data", (chunk) => (stderr += chunk));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), limitMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      const exitedAt = Date.now();
      resolve({
        code: signal ? null : code,
        stdout,
        stderr,
        tookMs: /TOOK (\d+)ms/.test(stdout) ? Number(/TOOK (\d+)ms/.exec(stdout)![1]) : undefined,
        lingeredMs: answeredAt === undefined ? undefined : exitedAt - answeredAt,
      });
    });
  });
}

/** A database URL for a fresh, empty PostgreSQL database, dropped by `drop()`. */
async function emptyDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `gc_refused_${randomBytes(6).toString("hex")}`;
  await adminQuery(`create database ${name}`);
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => adminQuery(`drop database if exists ${name} with (force)`) };
}

const caller = "caller: () => undefined";

describe("a refused createCredits", () => {
  it("checks its options before opening the database: a mistaken one is refused even when the database does not answer", async () => {
    const port = await closedPort();
    const exit = await refusedInChild(`{ database: "postgres://postgres@127.0.0.1:${port}/none", creditTypes: ["ai"], ${caller}, rateLimit: { default: "abc" } }`);
    expect(exit.stdout).toMatch(/REFUSED createCredits: rateLimit\.default "abc"/);
    expect(exit.code).toBe(0);
    expect(exit.lingeredMs).toBeLessThan(EXIT_AFTER_ANSWER_MS);
  }, 30_000);

  it("is refused at once on PGlite, before its slow start, and leaves no timer behind", async () => {
    const exit = await refusedInChild(`{ database: "memory://", creditTypes: ["ai"], ${caller}, rateLimit: { default: "abc" } }`);
    expect(exit.stdout).toMatch(/REFUSED createCredits: rateLimit\.default "abc"/);
    expect(exit.code).toBe(0);
    // PGlite's start alone takes seconds; the checks take microseconds.
    expect(exit.tookMs).toBeLessThan(1_000);
    expect(exit.lingeredMs).toBeLessThan(EXIT_AFTER_ANSWER_MS);
  }, 30_000);

  it.skipIf(!postgresAvailable)("leaves no connection open on PostgreSQL: the process exits by itself", async () => {
    const db = await emptyDatabase();
    try {
      const exit = await refusedInChild(`{ database: ${JSON.stringify(db.url)}, creditTypes: ["ai"], ${caller}, rateLimit: { default: "abc" } }`);
      expect(exit.stdout).toMatch(/REFUSED createCredits: rateLimit\.default "abc"/);
      expect(exit.code).toBe(0);
      expect(exit.lingeredMs).toBeLessThan(EXIT_AFTER_ANSWER_MS);
    } finally {
      await db.drop();
    }
  }, 30_000);

  it("closes the database it opened when a step after opening it fails", async () => {
    // A migrated PGlite directory with a subscription whose balance of a new credit type createCredits
    // adds at start: a constraint refuses that row, so the start fails after the database was opened.
    const dir = mkdtempSync(join(tmpdir(), "gc-refused-"));
    try {
      const handle = await connectDatabase({ pgliteDir: dir });
      await handle.db.execute(sql`insert into billing_subscriptions (owner_id, plan) values ('ann', 'default')`);
      await handle.db.execute(sql`alter table credit_balances add constraint refuse_new_type check (credit_type <> 'new')`);
      await handle.close();
      const exit = await refusedInChild(`{ database: ${JSON.stringify(dir)}, creditTypes: ["ai", "new"], ${caller} }`, 60_000);
      expect(exit.stdout).toMatch(/REFUSED .*credit_balances/s);
      expect(exit.code).toBe(0);
      expect(exit.lingeredMs).toBeLessThan(EXIT_AFTER_ANSWER_MS);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it.skipIf(!postgresAvailable)("closes the pool when the migrations fail", async () => {
    const db = await emptyDatabase();
    try {
      // A table of the credits schema already there, of another shape: the first migration fails.
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        await client.query(`create table billing_subscriptions (x int)`);
      } finally {
        await client.end();
      }
      const exit = await refusedInChild(`{ database: ${JSON.stringify(db.url)}, creditTypes: ["ai"], ${caller} }`);
      expect(exit.stdout).toMatch(/REFUSED /);
      expect(exit.code).toBe(0);
      expect(exit.lingeredMs).toBeLessThan(EXIT_AFTER_ANSWER_MS);
    } finally {
      await db.drop();
    }
  }, 60_000);
});
