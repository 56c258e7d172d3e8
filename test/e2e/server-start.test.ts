/**
 * The README's first command as a user meets it: the entry point starts with no configuration on
 * the embedded database, prints a banner with a demo subscription and tokens that work, refuses a
 * bad setting by name, and stops gracefully on SIGTERM while a request is in flight.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { postGraphQL } from "../helpers/test-app.js";
import { spawnServer } from "../helpers/spawn-server.js";

const dataDir = mkdtempSync(join(tmpdir(), "gc-start-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function bannerValue(output: string, label: RegExp): string {
  const line = output.split("\n").find((l) => label.test(l));
  if (!line) throw new Error(`banner has no ${label}:\n${output}`);
  return line.trim().split(/\s+/).at(-1)!;
}

describe("npm start", () => {
  it("starts on PGlite with no configuration, and the banner's tokens work", async () => {
    const server = await spawnServer({ PGLITE_DIR: join(dataDir, "pglite"), SIMULATE_FAILURES: "1", SIMULATE_SLOW_MS: "1500" });
    try {
      const output = server.output();
      expect(output).toMatch(/DEVELOPMENT MODE/);
      const subscriptionId = bannerValue(output, /Demo subscription/);
      const userToken = bannerValue(output, /User token/);
      const adminToken = bannerValue(output, /Admin token/);

      const health = await fetch(`${server.url}/health`);
      expect(health.status).toBe(200);

      const viewer = await postGraphQL(`${server.url}/graphql`, "{ viewer { id subscriptions { id balances { type balance } } } }", {}, { token: userToken });
      expect(viewer.body.data.viewer).toEqual({
        id: "demo-user",
        subscriptions: [
          {
            id: subscriptionId,
            balances: [
              { type: "ai", balance: 100 },
              { type: "leads", balance: 100 },
              { type: "skiptrace", balance: 100 },
            ],
          },
        ],
      });
      const admin = await postGraphQL(`${server.url}/graphql`, "{ viewer { isAdmin } }", {}, { token: adminToken });
      expect(admin.body.data.viewer.isAdmin).toBe(true);

      // SIGTERM while a slow metered call is running: the call finishes, then the process exits 0.
      const inFlight = postGraphQL(
        `${server.url}/graphql`,
        `mutation($s: ID!) { searchLeads(subscriptionId: $s, input: { query: "x", limit: 2 }) { leads { name } } }`,
        { s: subscriptionId },
        { token: userToken, headers: { "x-simulate-failure": "slow" } },
      );
      await new Promise((r) => setTimeout(r, 300));
      server.child.kill("SIGTERM");
      const finished = await inFlight;
      expect(finished.status).toBe(200);
      // Held 2, settled at the leads found (at least 1), the rest released.
      const found = finished.body.data.searchLeads.leads.length;
      expect(finished.body.extensions!.credits.charges[0]).toMatchObject({ charged: 2, cost: Math.max(1, found), remaining: 100 - Math.max(1, found) });
      expect(await server.exited).toBe(0);
      expect(server.output()).toMatch(/shutting down/);
    } finally {
      server.child.kill("SIGKILL");
    }
  });

  it("keeps its data across restarts and does not seed a second demo subscription", async () => {
    const server = await spawnServer({ PGLITE_DIR: join(dataDir, "pglite") });
    try {
      const userToken = bannerValue(server.output(), /User token/);
      const viewer = await postGraphQL(`${server.url}/graphql`, "{ viewer { subscriptions { balances { type balance } } } }", {}, { token: userToken });
      expect(viewer.body.data.viewer.subscriptions).toHaveLength(1);
      // What the first run's lead search cost (simulated, deterministic: "x" with limit 2 finds 1).
      expect(viewer.body.data.viewer.subscriptions[0].balances[1]).toEqual({ type: "leads", balance: 99 });
    } finally {
      server.child.kill("SIGTERM");
      await server.exited;
    }
  });

  it("refuses a bad setting, naming the variable", () => {
    const run = spawnSync(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: { ...process.env, PORT: "not-a-port", PGLITE_DIR: "memory://" },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/PORT: /);
    expect(run.stderr).not.toMatch(/at .*\.ts:\d+/);
  });
});
