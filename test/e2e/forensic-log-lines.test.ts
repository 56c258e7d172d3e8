/**
 * What an operator on call reads in the logs (an outside audit with only the logs, metrics and CLIs):
 * - a refused variable's value is not copied whole into the log (graphql-js quotes it twice in its
 *   message: a 900 KB string made a 1.8 MB line);
 * - a refused admin action names who tried it;
 * - a metered call replayed from its Idempotency-Key leaves a line tying its request id to the entry.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOGGED_MESSAGE_CHARACTERS } from "../../src/observability/log-excerpt.js";
import { createPgliteDatabase, type TestDatabase } from "../helpers/databases.js";
import { captureLogLines } from "../helpers/log-lines.js";
import { fundedSubscription, startTestServer, userToken, type TestServer } from "../helpers/test-app.js";

const OWNER = "forensic-owner";
const log = captureLogLines();
let database: TestDatabase;
let server: TestServer;
let token: string;
let subscriptionId: string;

beforeAll(async () => {
  database = await createPgliteDatabase();
  server = await startTestServer({ database, env: { LOG_LEVEL: "info" }, logDestination: log.destination });
  token = await userToken(OWNER);
  subscriptionId = await fundedSubscription(database, OWNER, { leads: 100 });
}, 120_000);
afterAll(async () => {
  await server?.close();
  await database?.dispose();
});

const linesOf = (requestId: string) => log.lines.filter((l) => l.requestId === requestId);

describe("log lines an operator reads", () => {
  it("keeps the start of a client error's message, not a huge refused value", async () => {
    const value = "Q".repeat(200_000);
    const answer = await server.gql("query ($b: Boolean!) { __typename @include(if: $b) }", { b: value }, { headers: { "x-request-id": "huge-variable" } });
    expect(answer.status).toBe(400);
    // The client gets graphql's whole message.
    expect(answer.body.errors?.[0].message.length).toBeGreaterThan(value.length);
    const [line] = linesOf("huge-variable").filter((l) => l.msg === "client error");
    expect(line.message.length).toBeLessThan(LOGGED_MESSAGE_CHARACTERS + 50);
    expect(line.message).toMatch(/^Variable "\$b" got invalid value "Q+… \(\d+ characters in all\)$/);
    expect(JSON.stringify(linesOf("huge-variable")).length).toBeLessThan(5_000);
  });

  it("names the caller of a refused admin action", async () => {
    const answer = await server.gql(
      `mutation { grantCredits(input: { subscriptionId: "${subscriptionId}", type: "leads", amount: 5, reason: "x" }) { id } }`,
      undefined,
      { token, headers: { "x-request-id": "refused-admin" } },
    );
    expect(answer.status).toBe(403);
    expect(linesOf("refused-admin").find((l) => l.msg === "client error")).toMatchObject({ reason: "FORBIDDEN", actorId: OWNER });
  });

  it("ties a replayed metered call's request id to the entry it replayed", async () => {
    const call = (requestId: string) =>
      server.gql(`mutation { searchLeads(subscriptionId: "${subscriptionId}", input: { query: "roofers", limit: 10 }) { total } }`, undefined, {
        token,
        headers: { "idempotency-key": "forensic-replay", "x-request-id": requestId },
      });
    const first = await call("first-run");
    const retry = await call("the-retry");
    const [charge] = first.body.extensions!.credits.charges;
    expect(retry.body.extensions!.credits.charges[0]).toMatchObject({ replayed: true, entryId: charge.entryId });
    expect(linesOf("the-retry").filter((l) => l.event === "credits.replayed")).toEqual([
      expect.objectContaining({
        level: 30,
        operation: "Mutation.searchLeads",
        subscriptionId,
        creditType: "leads",
        actorId: OWNER,
        entryId: charge.entryId,
        cost: charge.cost,
      }),
    ]);
  });
});
