/**
 * A relay of balance changes that fails logs why (an outside audit: with PostgreSQL's connections
 * for the role used up, 33 `live.relay_failed` lines said only drizzle's "Failed query: …", the
 * statement, and never the driver's cause, which other components' lines showed).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import type { DbOrTx } from "../../src/db/database.js";
import { startNotificationRelay } from "../../src/live/notification-relay.js";
import { createLogger } from "../../src/observability/logger.js";
import { captureLogLines } from "../helpers/log-lines.js";

/** A database whose every statement fails as drizzle reports a refused one: the driver's error as its cause. */
function refusingDatabase(): DbOrTx {
  const driverError = Object.assign(new Error('too many connections for role "app"'), { code: "53300" });
  const failing = async () => {
    throw new Error("Failed query: with moved as (…) select …\nparams: ", { cause: driverError });
  };
  return { execute: failing } as unknown as DbOrTx;
}

describe("live.relay_failed", () => {
  it("names the driver's cause and its code, not only the statement", async () => {
    const captured = captureLogLines();
    const relay = startNotificationRelay({ db: refusingDatabase(), intervalMs: 10, logger: createLogger("info", captured.destination) });
    try {
      await expect.poll(() => captured.lines.filter((line) => line.event === "live.relay_failed").length).toBe(1);
    } finally {
      await relay.stop();
    }
    await sleep(10);
    const [line] = captured.lines.filter((l) => l.event === "live.relay_failed");
    expect(line.err).toMatchObject({ message: expect.stringMatching(/^Failed query/), cause: 'too many connections for role "app"', code: "53300" });
  });
});
