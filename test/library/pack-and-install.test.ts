/**
 * The library as a new user gets it (issue 19): `npm pack` builds and packs this project, the
 * tarball is installed into an empty project beside only @apollo/server and graphql, and the server
 * in docs/library.md (the code block itself, extracted from the doc, not a copy) runs on PGlite.
 * Proves: a metered call is held and settled at its metered cost, extensions.credits is present,
 * a short balance answers 402, a system error is refunded, masked and logged, no caller answers 401,
 * a retry with the same Idempotency-Key header replays, and `creditAmount` exists on every metered
 * field (refused to a non-admin) without the example declaring it.
 *
 * Slow (pack, install, PGlite start): it runs in `npm test` and CI with generous timeouts.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, "../..");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/** The first ```js block after "## A complete server" in docs/library.md. */
export function exampleFromDoc(markdown: string): string {
  const section = markdown.slice(markdown.indexOf("## A complete server"));
  const match = /```js\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error("docs/library.md has no js block under '## A complete server'");
  return match[1];
}

interface Answer {
  status: number;
  body: { data?: Record<string, unknown> | null; errors?: { message: string; extensions: Record<string, unknown> }[]; extensions?: { credits?: any } };
}

describe("graphql-credits packed, installed and run as docs/library.md shows", () => {
  let dir: string;
  let server: ChildProcess | undefined;
  let url: string;
  let subscriptionId: string;
  let output = "";

  async function gql(query: string, user: string | null = "alice", headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...(user ? { "x-user-id": user } : {}), ...headers },
      body: JSON.stringify({ query }),
    });
    return { status: res.status, body: (await res.json()) as Answer["body"] };
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "graphql-credits-pack-"));
    await run(npm, ["pack", "--pack-destination", dir], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 });
    const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
    if (!tarball) throw new Error("npm pack wrote no tarball");
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "credits-host", private: true, type: "module" }));
    await run(npm, ["install", "--no-audit", "--no-fund", "--prefer-offline", `./${tarball}`, "@apollo/server@5.5.1", "graphql@16.15.0"], {
      cwd: dir,
      maxBuffer: 16 * 1024 * 1024,
    });
    writeFileSync(join(dir, "server.mjs"), exampleFromDoc(readFileSync(join(ROOT, "docs/library.md"), "utf8")));

    const child = spawn(process.execPath, ["server.mjs"], {
      cwd: dir,
      env: { PATH: process.env.PATH, PORT: "0", PGLITE_DIR: "memory://" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    server = child;
    const started = await new Promise<RegExpExecArray>((resolveStart, reject) => {
      const timer = setTimeout(() => reject(new Error(`the example did not start:\n${output}`)), 90_000);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const m = /GraphQL at (\S+) - alice's subscription: (\S+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolveStart(m);
        }
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.once("exit", (code) => reject(new Error(`the example exited with ${code}:\n${output}`)));
    });
    url = started[1];
    subscriptionId = started[2];
  }, 300_000);

  afterAll(async () => {
    server?.kill("SIGKILL");
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("installs the entry with its type declarations and migrations, not the server's sources or tests", () => {
    const installed = join(dir, "node_modules/graphql-credits");
    const manifest = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"));
    expect(manifest.exports["."].types).toBe("./dist/library/index.d.ts");
    expect(readFileSync(join(installed, "dist/library/index.d.ts"), "utf8")).toContain("createCredits");
    expect(readdirSync(join(installed, "drizzle")).some((f) => f.endsWith(".sql"))).toBe(true);
    expect(readdirSync(installed)).not.toContain("test");
    expect(readdirSync(installed)).not.toContain("src");
  });

  it("holds a metered call, settles it at its metered cost and reports extensions.credits", async () => {
    const { status, body } = await gql(`mutation { complete(subscriptionId: "${subscriptionId}", prompt: "hi", maxTokens: 3000) { text tokensUsed } }`);
    expect(status).toBe(200);
    expect(body.data).toEqual({ complete: { text: "echo: hi", tokensUsed: 200 } });
    const [charge] = body.extensions!.credits.charges;
    // Hold ceil((ceil(2/4)… ) + 3000)/1000) = 4; meter ceil((0.5 + 200)/1000) = 1; 3 released.
    expect(charge).toMatchObject({ path: ["complete"], operation: "Mutation.complete", type: "ai", estimated: 4, charged: 4, actual: 1, released: 3, refunded: 0, cost: 1, remaining: 9 });
    expect(body.extensions!.credits.remaining).toEqual({ [subscriptionId]: { ai: 9 } });
  });

  it("answers 402 INSUFFICIENT_CREDITS when the hold is above the balance, and charges nothing", async () => {
    const { status, body } = await gql(`mutation { complete(subscriptionId: "${subscriptionId}", prompt: "hi", maxTokens: 20000) { text } }`);
    expect(status).toBe(402);
    expect(body.data).toBeNull();
    expect(body.errors).toHaveLength(1);
    expect(body.errors![0].extensions).toMatchObject({ code: "INSUFFICIENT_CREDITS", creditType: "ai", required: 21, available: 9, subscriptionId });
    const after = await gql(`mutation { search(subscriptionId: "${subscriptionId}", term: "x") }`);
    expect(after.body.extensions!.credits.charges[0]).toMatchObject({ type: "search", charged: 1, cost: 1, remaining: 2 });
  });

  it("refunds a system error whole and masks it as a 500 without a formatError of the host", async () => {
    const { status, body } = await gql(`mutation { search(subscriptionId: "${subscriptionId}", term: "fail") }`);
    expect(status).toBe(500);
    expect(body.errors![0].extensions.code).toBe("INTERNAL_SERVER_ERROR");
    expect(body.errors![0].message).not.toContain("search provider unavailable");
    expect(body.errors![0].extensions).not.toHaveProperty("stacktrace");
    expect(typeof body.errors![0].extensions.requestId).toBe("string");
    expect(body.extensions!.credits.charges[0]).toMatchObject({ type: "search", charged: 1, refunded: 1, cost: 0, remaining: 2 });
    // The detail goes to the log (stderr, the default logger), never to the client.
    await expect.poll(() => output, { timeout: 5_000 }).toContain("search provider unavailable");
  });

  it("replays a retry with the same Idempotency-Key header instead of charging it again", async () => {
    const query = `mutation { complete(subscriptionId: "${subscriptionId}", prompt: "again", maxTokens: 500) { text } }`;
    const first = await gql(query, "alice", { "idempotency-key": "pack-retry-1" });
    expect(first.status).toBe(200);
    const cost = first.body.extensions!.credits.charges[0].cost as number;
    const remaining = first.body.extensions!.credits.charges[0].remaining as number;
    const retry = await gql(query, "alice", { "idempotency-key": "pack-retry-1" });
    expect(retry.body.data).toEqual(first.body.data);
    expect(retry.body.extensions!.credits.charges[0]).toMatchObject({ replayed: true, cost });
    // Charged once: a new key is a new call, paid from where the first one left the balance.
    const next = await gql(query, "alice", { "idempotency-key": "pack-retry-2" });
    expect(next.body.extensions!.credits.charges[0]).toMatchObject({ cost, remaining: remaining - cost });
  });

  it("takes the admin's creditAmount on every metered field, refusing it to anyone else (403)", async () => {
    const { status, body } = await gql(`mutation { search(subscriptionId: "${subscriptionId}", term: "x", creditAmount: 0) }`);
    expect(status).toBe(403);
    expect(body.errors![0].extensions.code).toBe("FORBIDDEN");
    expect(body.errors![0].message).toMatch(/creditAmount is for admins only/);
  });

  it("answers 401 UNAUTHENTICATED to a metered call without a caller, and 403 to another owner", async () => {
    const anonymous = await gql(`mutation { search(subscriptionId: "${subscriptionId}", term: "x") }`, null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.errors![0].extensions.code).toBe("UNAUTHENTICATED");
    const other = await gql(`mutation { search(subscriptionId: "${subscriptionId}", term: "x") }`, "mallory");
    expect(other.status).toBe(403);
    expect(other.body.errors![0].extensions.code).toBe("FORBIDDEN");
  });
});
