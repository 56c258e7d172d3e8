// A Node client of graphql-credits with urql and graphql-ws (docs/live-balance.md, "A typed client"):
// runs a metered mutation (with an Idempotency-Key, sent again with it on a network failure, a timeout
// or a 409 until it has an answer, and never charged twice), shows the remaining balance, treats 402
// as an answer, and follows the balance that mutation spends live, across server restarts. Put it
// under the client's src/ beside credits.graphql (an ES module package: "type": "module"), run
// codegen, then:
//   CREDITS_TOKEN=<JWT> CREDITS_SUBSCRIPTION=<id> npx tsx src/example.ts
// CREDITS_URL is the server's GraphQL endpoint (default http://localhost:4000/graphql); its live
// endpoint is the same URL over ws:// (wss:// for https://). It compiles under `strict` with
// `exactOptionalPropertyTypes` (tsc --init's default).
import { Client, cacheExchange, fetchExchange, subscriptionExchange, type CombinedError, type ExecutionResult } from "@urql/core";
import { createClient as createWsClient, type FormattedExecutionResult } from "graphql-ws";
import WebSocket from "ws"; // Node only (Node 20 has no global WebSocket); a browser leaves it out
import type { CreditsExtension } from "graphql-credits/client";
import { LeadsBalanceDocument, LeadsBalanceNowDocument, SearchLeadsDocument } from "./generated/credits.js"; // from codegen

const token = process.env.CREDITS_TOKEN ?? "";
const subscriptionId = process.env.CREDITS_SUBSCRIPTION ?? "";
const url = process.env.CREDITS_URL ?? "http://localhost:4000/graphql";

type JsonObject = Record<string, unknown>;

/** The headers of every HTTP request: the client's, and repeated by an operation that adds its own. */
const headers = (): Record<string, string> => ({ authorization: `Bearer ${token}` });

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

/** The code and reason of a WebSocket close (what graphql-ws hands a subscription when it gives up). */
function closeOf(value: unknown): { code: number; reason: string } | undefined {
  return typeof value === "object" && value !== null && "code" in value && "reason" in value ? (value as { code: number; reason: string }) : undefined;
}

const ws = createWsClient({
  url: url.replace(/^http/, "ws"), // http:// → ws://, https:// → wss://
  webSocketImpl: WebSocket, // Node only, as above
  connectionParams: { authorization: `Bearer ${token}` },
  // A lost connection (a server restart or deploy closes with 1001; while it is down, connecting
  // fails with ECONNREFUSED, an Error) is tried again for as long as it takes. graphql-ws's defaults
  // would give up: it retries only closes, not Errors, and only 5 times. retryWait is graphql-ws's own
  // wait between attempts (2^n s plus 0.3 to 3 s of jitter) capped at 30 s, so that a long outage does
  // not leave it waiting many minutes after the server is back. A close it treats as final (4401,
  // 4400, 4500…) is never retried, whatever these say.
  retryAttempts: Infinity,
  shouldRetry: () => true,
  retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, Math.min(2 ** retries, 30) * 1000 + 300 + Math.random() * 2700)),
  on: {
    // Connected again after a loss: graphql-ws subscribes again, but the changes made meanwhile were
    // not pushed, so read the balance now.
    connected: (_socket, _payload, wasRetry) => {
      if (wasRetry) void readLeadsBalanceAgain();
    },
    // 4401: no token, a bad one, its exp passed while connected, or its key was removed from the
    // issuer's key set (the reason says which). graphql-ws does not retry it: sign in again, then
    // connect with the new token.
    closed: (event) => {
      const { code, reason } = event as { code: number; reason: string };
      if (code === 4401) console.log(`signed out: ${reason}`);
    },
  },
});
const client = new Client({
  url,
  fetchOptions: () => ({ headers: headers() }),
  // Queries by POST too: urql sends a short query as a GET, which the server refuses as a possible
  // cross-site request forgery (Apollo's CSRF prevention: a GET needs a preflight header).
  preferGetMethod: false,
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

/** Prints the leads balance as the server has it now (network-only: not urql's cached answer). */
async function readLeadsBalanceAgain(): Promise<void> {
  const now = await client.query(LeadsBalanceNowDocument, { s: subscriptionId }, { requestPolicy: "network-only" }).toPromise();
  const leads = now.data?.subscription.balances.find((b) => b.type === "leads");
  if (leads) console.log(`leads balance: ${leads.balance} (read again after reconnecting)`);
  else if (now.error) console.log(`leads balance not read again: ${now.error.message}`); // the next reconnection reads again
}

// A metered mutation (it spends `leads` credits), sent with an Idempotency-Key and sent again, with
// the SAME key, until it has an answer, so that it is never charged twice:
// - its answer was lost, or did not come within ATTEMPT_TIMEOUT_MS (a network failure, a timeout): the
//   call may have run. If it finished, the retry gets its stored result and charge (`replayed: true`);
//   if the connection was cut while it ran, its hold was refunded as not delivered and its key
//   released, so the retry runs it again (one charge in all); if it still runs, the retry gets 409;
// - 409 CONFLICT: a call with this key is still running. Wait extensions.retryAfterSeconds (the
//   Retry-After header says the same), then ask again;
// - 503 from a server that is stopping (the call was not run): wait its Retry-After.
// For RETRY_FOR_MS at most; then the last error is shown. Anything else is an answer, 402 included:
// urql reads a 4xx response that carries a GraphQL body as a result, so a 402 arrives as
// `error.graphQLErrors` with code INSUFFICIENT_CREDITS (and the balance in extensions), not as a
// network failure. An operation's own fetchOptions replace the client's (urql does not merge them),
// so they repeat its headers: without the token the call is UNAUTHENTICATED.
const ATTEMPT_TIMEOUT_MS = 30_000;
const RETRY_FOR_MS = 60_000;
/** The wait after a 409 or 503 that names none, and after a network failure (not to spin while the server is down). */
const RETRY_AFTER_FALLBACK_S = 2;
const NETWORK_RETRY_S = 1;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * fetch that gives up after `ms`, so a response that hangs ends as a network error. A signal in
 * fetchOptions would not do: urql puts its own on each request (to cancel it), replacing it; here
 * both apply.
 */
function fetchWithin(ms: number): typeof fetch {
  return (input, init) => fetch(input, { ...init, signal: AbortSignal.any(init?.signal ? [init.signal, AbortSignal.timeout(ms)] : [AbortSignal.timeout(ms)]) });
}

/** Seconds to wait before sending the same call again, or undefined when the result is its answer. */
function retryAfterSeconds(error: CombinedError | undefined): number | undefined {
  if (!error) return undefined;
  if (error.networkError) return NETWORK_RETRY_S; // lost, timed out, or not GraphQL (a balancer's 502)
  const response = error.response as Response | undefined; // urql keeps the fetch Response
  const conflict = error.graphQLErrors.find((e) => e.extensions.code === "CONFLICT");
  if (!conflict && response?.status !== 503) return undefined;
  const named = conflict?.extensions.retryAfterSeconds ?? Number(response?.headers.get("retry-after"));
  return typeof named === "number" && named > 0 ? named : RETRY_AFTER_FALLBACK_S;
}

const variables = { s: subscriptionId, query: "roofers", limit: 20 };
const idempotencyKey = crypto.randomUUID();
const giveUpAt = Date.now() + RETRY_FOR_MS;
const searchLeads = () =>
  client
    .mutation(SearchLeadsDocument, variables, {
      fetchOptions: () => ({ headers: { ...headers(), "idempotency-key": idempotencyKey } }),
      fetch: fetchWithin(Math.max(1, Math.min(ATTEMPT_TIMEOUT_MS, giveUpAt - Date.now()))),
    })
    .toPromise();
let result = await searchLeads();
for (;;) {
  const wait = retryAfterSeconds(result.error);
  if (wait === undefined || Date.now() + wait * 1000 >= giveUpAt) break; // an answer, or out of time: shown below
  await sleep(wait * 1000);
  result = await searchLeads();
}
const credits = result.extensions?.credits as CreditsExtension | undefined;
const short = result.error?.graphQLErrors.find((e) => e.extensions.code === "INSUFFICIENT_CREDITS");
if (short) console.log(`top up: needs ${short.extensions.required} leads credits, has ${short.extensions.available}`);
else if (result.error?.networkError) console.log("offline:", result.error.networkError.message);
else if (result.error) console.log(result.error.message); // e.g. UNAUTHENTICATED, BAD_USER_INPUT
else if (result.data) console.log(`${result.data.searchLeads.leads.length} of ${result.data.searchLeads.total} leads`);
const left = credits?.remaining[subscriptionId]?.leads;
if (left !== undefined) console.log("leads balance:", left);

// The same balance live: every change, wherever it was made (another tab, an admin grant, a refund).
// A refusal (a GraphQL error: NOT_FOUND for an unknown subscription id, FORBIDDEN for another's) ends
// it: say why, once (urql hands the last result on again when the server completes the stream). A
// network error here is a close graphql-ws gave up on: 4401, already said above, or another final one.
const live = client.subscription(LeadsBalanceDocument, { s: subscriptionId }).subscribe((event) => {
  if (event.error?.networkError) {
    const close = closeOf(event.error.networkError);
    if (close?.code !== 4401) console.log(`live balance stopped: ${close ? `closed ${close.code} ${close.reason}` : event.error.message}`);
    return live.unsubscribe();
  }
  if (event.error) {
    console.log(`live balance refused: ${event.error.message}`);
    live.unsubscribe();
    // Nothing else to follow: close the socket, so the process can end.
    return void ws.dispose();
  }
  const change = event.data?.creditBalanceChanged;
  if (change) console.log(`leads balance: ${change.balance}${change.threshold ? ` (${change.threshold})` : ""}`);
});
