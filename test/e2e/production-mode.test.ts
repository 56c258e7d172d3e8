/**
 * NODE_ENV=production has no development mode (issue 15, item 1): the entry point refuses to start
 * without JWT_SECRET or JWT_JWKS_URL, or with a JWT_SECRET shorter than 32 characters, naming the
 * variables; with a real secret it starts, and allows no browser origin it was not given.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { spawnServer } from "../helpers/spawn-server.js";

const BASE_ENV = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", PGLITE_DIR: "memory://", PORT: "0", HOST: "127.0.0.1" };

function start(env: Record<string, string>) {
  return spawnSync(process.execPath, ["--import", "tsx", "src/main.ts"], { env: { ...BASE_ENV, ...env }, encoding: "utf8", timeout: 60_000 });
}

describe("production mode", () => {
  it("refuses to start without JWT_SECRET or JWT_JWKS_URL, naming both", () => {
    const run = start({ NODE_ENV: "production" });
    expect(run.status).not.toBe(0);
    expect(run.status).not.toBeNull();
    expect(run.stderr).toMatch(/JWT_SECRET/);
    expect(run.stderr).toMatch(/JWT_JWKS_URL/);
    expect(run.stdout).not.toMatch(/Admin token/);
    expect(run.stdout + run.stderr).not.toMatch(/graphql-credits listening/);
  }, 90_000);

  it("refuses a JWT_SECRET shorter than 32 characters", () => {
    const run = start({ NODE_ENV: "production", JWT_SECRET: "short-secret" });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/JWT_SECRET: must be at least 32 characters/);
  }, 90_000);

  it("starts with a real secret, without the development banner, and allows no localhost origin", async () => {
    const { PORT: _port, ...env } = BASE_ENV;
    const server = await spawnServer({ ...env, NODE_ENV: "production", JWT_SECRET: "a-production-secret-of-32-chars-at-least!" });
    try {
      expect(server.output()).not.toMatch(/DEVELOPMENT MODE|Admin token/);
      const preflight = await fetch(`${server.url}/graphql`, {
        method: "OPTIONS",
        headers: { origin: "http://localhost:5173", "access-control-request-method": "POST" },
      });
      expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      server.child.kill("SIGTERM");
      await server.exited;
    }
  }, 90_000);
});
