/**
 * docs/library.md's way of telling the library that a response will never reach its client, run as
 * written: a plugin watches the response and calls responseNotDelivered with the operation's context.
 * Apollo runs each operation with a shallow copy of the host's context, so the object the host's
 * context function returned leads nowhere: the docs used to show that one, and an outside audit found
 * it refunded nothing, silently. Given it now, the library says so in its log.
 */
import { ApolloServer, type ApolloServerPlugin } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import type { ServerResponse } from "node:http";
import { request } from "node:http";
import { buildSchema } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCredits, type Credits } from "../../src/library/index.js";
import { createLogger } from "../../src/observability/logger.js";
import { captureLogLines } from "../helpers/log-lines.js";

interface HostContext {
  user?: string;
  res: ServerResponse;
}

const SDL = (directive: string) => `
  ${directive}
  type Query { ping: Int }
  type Mutation { slow(subscriptionId: ID!, ms: Int!): Int @credits(type: "calls", amount: 2) }`;

/** Posts `body` and hangs up after `ms`, without reading an answer. */
function hangUpAfter(url: string, user: string, body: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const target = new URL(url);
    const req = request({ host: target.hostname, port: target.port, path: "/", method: "POST", agent: false, headers: { "content-type": "application/json", "x-user": user } });
    req.on("error", () => undefined);
    req.end(body);
    setTimeout(() => {
      req.destroy();
      resolve();
    }, ms);
  });
}

async function waitFor(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 50 && !(await check()); i++) await new Promise((r) => setTimeout(r, 100));
}

describe.each(["the operation's context (docs/library.md)", "the object the context function returned"] as const)("responseNotDelivered given %s", (given) => {
  const captured = captureLogLines();
  let credits: Credits<HostContext>;
  let server: ApolloServer<HostContext>;
  let url: string;
  let sub: string;

  beforeAll(async () => {
    credits = await createCredits<HostContext>({
      database: "memory://",
      creditTypes: ["calls"],
      caller: (ctx) => (ctx.user ? { id: ctx.user, isAdmin: false } : undefined),
      recovery: false,
      logger: createLogger("warn", captured.destination),
    });
    // As docs/library.md shows it: the plugin sees the copy of the context the operation runs with.
    const undelivered: ApolloServerPlugin<HostContext> = {
      async requestDidStart({ contextValue }) {
        const { res } = contextValue;
        res.on("close", () => {
          if (!res.writableFinished) void credits.responseNotDelivered(contextValue);
        });
      },
    };
    const schema = credits.transform(buildSchema(SDL(credits.typeDefs)), {
      Mutation: { slow: async (_: unknown, { ms }: { ms: number }) => new Promise((resolve) => setTimeout(() => resolve(ms), ms)) },
    });
    server = new ApolloServer<HostContext>({ schema, plugins: given === "the operation's context (docs/library.md)" ? [credits.plugin, undelivered] : [credits.plugin] });
    ({ url } = await startStandaloneServer(server, {
      listen: { port: 0, host: "127.0.0.1" },
      context: async ({ req, res }) => {
        const ctx: HostContext = { user: req.headers["x-user"] as string | undefined, res };
        // What the docs used to show: the handler closes over this object, not the operation's copy.
        if (given === "the object the context function returned") {
          res.on("close", () => {
            if (!res.writableFinished) void credits.responseNotDelivered(ctx);
          });
        }
        return ctx;
      },
    }));
    sub = (await credits.admin.createSubscription({ ownerId: "ann", initialCredits: { calls: 10 } })).id;
  });
  afterAll(async () => {
    await server?.stop();
    await credits?.close();
  });

  it(given === "the operation's context (docs/library.md)" ? "refunds the hold of a client that hung up mid-call" : "refunds nothing, and says why in the log", async () => {
    await hangUpAfter(url, "ann", JSON.stringify({ query: `mutation { slow(subscriptionId: "${sub}", ms: 600) }` }), 200);
    if (given === "the operation's context (docs/library.md)") {
      await waitFor(async () => (await credits.admin.balances(sub)).calls === 10);
      expect(await credits.admin.balances(sub)).toEqual({ calls: 10 });
    } else {
      await waitFor(async () => captured.lines.some((line) => line.event === "credits.undelivered_unknown_context"));
      await new Promise((r) => setTimeout(r, 800)); // the call settles
      expect(await credits.admin.balances(sub)).toEqual({ calls: 8 });
      expect(captured.lines.filter((line) => line.event === "credits.undelivered_unknown_context")).toEqual([
        expect.objectContaining({ level: 40, msg: expect.stringMatching(/operation's contextValue/) }),
      ]);
    }
  });
});
