/**
 * credits.admin.balances of a subscription that does not exist is NOT_FOUND, as admin.grant on the
 * same id is (DESIGN.md, "Errors": NOT_FOUND when the subscription does not exist), not an empty
 * set of balances that reads like a subscription without any.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCredits, NotFoundError, type Credits } from "../../src/library/index.js";
import { createLogger } from "../../src/observability/logger.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/databases.js";

const MISSING = "00000000-0000-0000-0000-000000000000";

describe.each(BACKENDS)("credits.admin.balances on %s", (backend) => {
  let database: TestDatabase;
  let credits: Credits<object>;
  beforeAll(async () => {
    database = await createTestDatabase(backend);
    credits = await createCredits({ database, creditTypes: ["calls", "search"], caller: () => undefined, recovery: false, rateLimit: false, logger: createLogger("silent") });
  }, 120_000);
  afterAll(async () => {
    await credits?.close();
    await database?.dispose();
  });

  it("throws NOT_FOUND for a subscription that does not exist, as admin.grant does", async () => {
    const grant = credits.admin.grant({ subscriptionId: MISSING, creditType: "calls", amount: 1 });
    await expect(grant).rejects.toBeInstanceOf(NotFoundError);
    const granted = await grant.catch((err: NotFoundError) => err);
    const balances = await credits.admin.balances(MISSING).then(
      (found) => found,
      (err: unknown) => err,
    );
    expect(balances).toBeInstanceOf(NotFoundError);
    expect(balances).toMatchObject({ code: "NOT_FOUND", message: (granted as NotFoundError).message });
    expect((balances as NotFoundError).message).toBe(`Subscription ${MISSING} does not exist`);
  });

  it("answers every balance of one that exists, zero ones included", async () => {
    const sub = await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 3 } });
    expect(await credits.admin.balances(sub.id)).toEqual({ calls: 3, search: 0 });
  });

  it("still refuses an id that is not a UUID as BAD_USER_INPUT", async () => {
    await expect(credits.admin.balances("nope")).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
  });
});
