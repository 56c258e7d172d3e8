// A Node client of graphql-credits with urql and graphql-ws (docs/live-balance.md, "A typed client"):
// runs a metered mutation, shows the remaining balance, treats 402 as an answer, and follows the
// balance that mutation spends live. Put it under the client's src/ beside credits.graphql (an ES
// module package: "type": "module"), run codegen, then:
//   CREDITS_TOKEN=<JWT> CREDITS_SUBSCRIPTION=<id> npx tsx src/example.ts
// CREDITS_URL is the server's GraphQL endpoint (default http://localhost:4000/graphql); its live
// endpoint is the same URL over ws:// (wss:// for https://). It compiles under `strict` with
// `exactOptionalPropertyTypes` (tsc --init's default).
import { Client, cacheExchange, fetchExchange, subscriptionExchange, type ExecutionResult } from "@urql/core";
import { createClient as createWsClient, type FormattedExecutionResult } from "graphql-ws";
import WebSocket from "ws"; // Node only (Node 20 has no global WebSocket); a browser leaves it out
import type { CreditsExtension } from "graphql-credits/client";
import { LeadsBalanceDocument, SearchLeadsDocument } from "./generated/credits.js"; // from codegen

const token = process.env.CREDITS_TOKEN ?? "";
const subscriptionId = process.env.CREDITS_SUBSCRIPTION ?? "";
const url = process.env.CREDITS_URL ?? "http://localhost:4000/graphql";

type JsonObject = Record<string, unknown>;

/**
 * graphql-ws's result as urql's: the same fields, one that is absent left out. graphql-ws types an
 * absent field as `undefined`, which urql's ExecutionResult does not take under
 * exactOptionalPropertyTypes.
 */
function asUrqlResult({ data, errors, extensions, hasNext }: FormattedExecutionResult<JsonObject, JsonObject>): ExecutionResult {
  return {
    ...(data === undefined ? {} : { data }),
    ...(errors === undefined ? {} : { errors }),
    ...(extensions === undefined ? {} : { extensions }),
    ...(hasNext === undefined ? {} : { hasNext }),
  };
}

const ws = createWsClient({
  url: url.replace(/^http/, "ws"), // http:// → ws://, https:// → wss://
  webSocketImpl: WebSocket, // Node only, as above
  connectionParams: { authorization: `Bearer ${token}` },
  // 4401: no token, a bad one, its exp passed while connected, or its key was removed from the
  // issuer's key set (the reason says which). graphql-ws does not retry it: sign in again, then
  // connect with the new token.
  on: {
    closed: (event) => {
      const { code, reason } = event as { code: number; reason: string };
      if (code === 4401) console.log(`signed out: ${reason}`);
    },
  },
});
const client = new Client({
  url,
  fetchOptions: () => ({ headers: { authorization: `Bearer ${token}` } }),
  exchanges: [
    cacheExchange,
    fetchExchange,
    subscriptionExchange({
      forwardSubscription: (request) => ({
        subscribe: (sink) => ({
          unsubscribe: ws.subscribe<JsonObject, JsonObject>(
            { ...request, query: request.query ?? "" },
            { next: (result) => sink.next(asUrqlResult(result)), error: (error) => sink.error(error), complete: () => sink.complete() },
          ),
        }),
      }),
    }),
  ],
});

// A metered mutation (it spends `leads` credits). urql reads a 4xx response that carries a GraphQL
// body as a result, so a 402 arrives as `error.graphQLErrors` with code INSUFFICIENT_CREDITS (and the
// balance in extensions), not as a network failure.
const result = await client.mutation(SearchLeadsDocument, { s: subscriptionId, query: "roofers", limit: 20 }).toPromise();
const credits = result.extensions?.credits as CreditsExtension | undefined;
const short = result.error?.graphQLErrors.find((e) => e.extensions.code === "INSUFFICIENT_CREDITS");
if (short) console.log(`top up: needs ${short.extensions.required} leads credits, has ${short.extensions.available}`);
else if (result.error?.networkError) console.log("offline:", result.error.networkError.message);
else if (result.error) console.log(result.error.message); // e.g. UNAUTHENTICATED, BAD_USER_INPUT
else if (result.data) console.log(`${result.data.searchLeads.leads.length} of ${result.data.searchLeads.total} leads`);
const left = credits?.remaining[subscriptionId]?.leads;
if (left !== undefined) console.log("leads balance:", left);

// The same balance live: every change, wherever it was made (another tab, an admin grant, a refund).
// A refusal (NOT_FOUND for an unknown subscription id, FORBIDDEN for another's) ends it: say why,
// once (urql hands the last result on again when the server completes the stream).
const live = client.subscription(LeadsBalanceDocument, { s: subscriptionId }).subscribe((event) => {
  if (event.error) {
    console.log(`live balance refused: ${event.error.message}`);
    return live.unsubscribe();
  }
  const change = event.data?.creditBalanceChanged;
  if (change) console.log(`leads balance: ${change.balance}${change.threshold ? ` (${change.threshold})` : ""}`);
});
