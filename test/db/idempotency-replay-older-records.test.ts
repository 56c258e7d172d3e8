/**
 * A replay of a key stored by the previous release (an outside upgrade audit): that release stored
 * charges without `actual` (there were no meters), and the replay left the key out of
 * extensions.credits, where every charge has it (null for a call that was not metered).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import type { ChargeRecord } from "../../src/credits/charge-collector.js";
import type { MeteredField } from "../../src/credits/metered-field.js";
import type { RequestContext } from "../../src/graphql/context.js";
import { createDatabaseIdempotencyGate } from "../../src/idempotency/database-idempotency-gate.js";
import type { FirstClaim, ReplayClaim } from "../../src/idempotency/idempotency-gate.js";
import { createLogger } from "../../src/observability/logger.js";

const field = { coordinate: "Mutation.searchLeads" } as MeteredField;

/** A charge as the previous release stored it: no `actual`. */
const olderCharge = {
  path: ["searchLeads"],
  operation: "Mutation.searchLeads",
  subscriptionId: "00000000-0000-4000-8000-000000000011",
  type: "leads",
  estimated: 5,
  charged: 5,
  released: 0,
  refunded: 0,
  cost: 5,
  remaining: 95,
  entryId: "00000000-0000-4000-8000-000000000012",
  adminOverride: false,
  fallback: false,
} as unknown as ChargeRecord;

function context(key: string): RequestContext {
  return { requestId: `req-${key}`, viewer: { id: "older-owner", isAdmin: false }, authError: undefined, idempotencyKey: key } as unknown as RequestContext;
}

describe.each(BACKENDS)("replaying a charge stored by the previous release on %s", (backend) => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase(backend);
  });
  afterAll(() => database?.dispose());

  it("reports actual as null, as for any charge that was not metered", async () => {
    const gate = createDatabaseIdempotencyGate({ db: database.db, ttlMs: 3_600_000, staleAfterMs: 3_600_000, logger: createLogger("silent") });
    const claim = (await gate.begin(field, { limit: 5 }, context("older"), "searchLeads")) as FirstClaim;
    expect(claim.kind).toBe("first");
    await claim.complete({ leads: [] }, olderCharge);
    const replay = (await gate.begin(field, { limit: 5 }, context("older"), "searchLeads")) as ReplayClaim;
    expect(replay.kind).toBe("replay");
    expect(replay.charge).toHaveProperty("actual", null);
    // What the client reads: the key is there, as null (an undefined one is dropped from the JSON).
    expect(JSON.parse(JSON.stringify(replay.charge))).toMatchObject({ actual: null, charged: 5, cost: 5 });
  });
});

