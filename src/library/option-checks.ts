/**
 * createCredits' options, checked before anything is opened (DESIGN.md, convention 1: a mistake is a
 * startup error, never one per request; docs/library.md, "Options"). A host in JavaScript gets no type
 * checks: an unknown key (at the top or inside an option object, with the known key it is close to),
 * a value of the wrong type or out of range is refused with an error that names the option, in a few
 * microseconds, before a connection, a PGlite start or a timer exists that a refusal would leave open.
 */
import type { ChargeObserver } from "../credits/charge-observer.js";
import { parseLimit } from "./rate-limits.js";

/** A value as an option's error message names it: `5 (a number)`, `"x" (a string)`, `an array` … */
export function described(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "missing";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)} (a string)`;
  if (typeof value === "function") return "a function";
  if (typeof value === "object") return "an object";
  return `${String(value)} (a ${typeof value})`;
}

export const isFunction = (value: unknown): value is (...args: any[]) => unknown => typeof value === "function";

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

function refuse(message: string): never {
  throw new Error(`createCredits: ${message}`);
}

/** The longest delay a Node timer takes: beyond it, setTimeout fires after 1 ms (every millisecond, for a repeating one). */
const MAX_TIMER_MS = 2_147_483_647;
/** The longest duration kept in the database (a key's ttl, a hold's timeout): 100 years, far beyond any use, inside a Date's range. */
const MAX_DURATION_MS = 100 * 365.25 * 86_400_000;

/** Optimal string alignment distance: edits, a swap of two neighbours counting as one ("defualt"). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The known key a mistaken one is close to: another case, a typo, or a part of it ("ttl" for "ttlMs"). */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: { name: string; score: number } | undefined;
  for (const name of known) {
    const other = name.toLowerCase();
    let score = distance(lower, other);
    if (lower.length >= 3 && (other.startsWith(lower) || lower.startsWith(other))) score = Math.min(score, 1);
    if (score <= (lower.length >= 5 ? 2 : 1) && (!best || score < best.score)) best = { name, score };
  }
  return best?.name;
}

/** Refuses a key of `value` that is not one of `known`, naming it by `path` (`idempotency.ttl`). */
function noUnknownKeys(path: string | undefined, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const named = path === undefined ? `unknown option \`${key}\`` : `\`${path}.${key}\` is not an option`;
    const near = nearestKey(key, known);
    const list = `(the ${path === undefined ? "options" : `keys of \`${path}\``} are ${known.join(", ")})`;
    refuse(`${named}: ${near ? `did you mean \`${near}\`? ` : ""}${list}`);
  }
}

/** A positive number of milliseconds, at most `max` (a timer's range, or the longest duration kept). */
function milliseconds(path: string, value: unknown, max: number, example: string): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    refuse(`\`${path}\` is ${described(value)}: give a positive number of milliseconds, e.g. ${example}`);
  }
  if (value > max) refuse(`\`${path}\` is ${value}: give at most ${max} milliseconds${max === MAX_TIMER_MS ? " (the longest delay of a Node timer, about 24.8 days)" : " (100 years)"}`);
}

function wholeNumber(path: string, value: unknown, example: string): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    refuse(`\`${path}\` is ${described(value)}: give a whole number of at least 1, e.g. ${example}`);
  }
}

function optionalFunction(path: string, value: unknown, example: string): void {
  if (value !== undefined && !isFunction(value)) refuse(`\`${path}\` is ${described(value)}: give a function, e.g. ${example}`);
}

/** `false`, an object, or nothing: `true` or a number is refused, saying what to give. */
function falseOrObject(path: string, value: unknown, forms: string): value is Record<string, unknown> {
  if (value === undefined || value === false) return false;
  if (!isPlainObject(value)) refuse(`\`${path}\` is ${described(value)}: leave it out for the default, give false to turn it off, or ${forms}`);
  return true;
}

/** An object replacing a part of the library (a gate): its methods are functions; nothing else is given beside it. */
function gate(path: string, setting: Record<string, unknown>, methods: readonly string[], settings: string): void {
  const given = setting.gate;
  if (given === null || (typeof given !== "object" && typeof given !== "function")) {
    refuse(`\`${path}.gate\` is ${described(given)}: give an object with ${methods.map((m) => `${m}()`).join(", ")}`);
  }
  const missing = methods.filter((m) => !isFunction((given as Record<string, unknown>)[m]));
  if (missing.length > 0) refuse(`\`${path}.gate\` has no ${missing.join(", ")} function: give an object with ${methods.map((m) => `${m}()`).join(", ")}`);
  const beside = Object.keys(setting).find((key) => key !== "gate");
  if (beside !== undefined) {
    refuse(`\`${path}.${beside}\` is given beside \`${path}.gate\`: a { gate } replaces the library's own, so ${settings} would be ignored; give one or the other`);
  }
}

function checkDatabase(database: unknown): void {
  if (typeof database === "string") return; // its form is checked where it is opened (databaseLocation)
  const forms = 'give a postgres:// URL, a PGlite directory ("memory://" keeps nothing) or an open handle { db, kind, ping, close }';
  if (!isPlainObject(database)) refuse(`\`database\` is ${described(database)}: ${forms}`);
  if (database.db === null || typeof database.db !== "object") {
    refuse(`\`database\` is an object without \`db\` (a drizzle database): ${forms}, e.g. { db: drizzle(pool), kind: "postgres", ping, close }`);
  }
  if (database.kind !== "postgres" && database.kind !== "pglite") refuse(`\`database.kind\` is ${described(database.kind)}: give "postgres" or "pglite"`);
  for (const method of ["ping", "close"] as const) {
    if (!isFunction(database[method])) refuse(`\`database.${method}\` is ${described(database[method])}: an open handle has ping() and close() functions`);
  }
}

/** Credit types: names (or { name, description }), each once. Returns the names. */
export function creditTypeNames(types: unknown): string[] {
  if (!Array.isArray(types)) {
    refuse(`\`creditTypes\` is ${described(types)}: give an array of credit type names, e.g. creditTypes: ["ai", "search"] (or { name, description })`);
  }
  const names = types.map((t: unknown, i) => {
    if (isPlainObject(t)) {
      noUnknownKeys(`creditTypes[${i}]`, t, ["name", "description"]);
      if (t.description !== undefined && typeof t.description !== "string") {
        refuse(`\`creditTypes[${i}].description\` is ${described(t.description)}: give a string, or leave it out`);
      }
    }
    const name = typeof t === "string" ? t : isPlainObject(t) ? t.name : undefined;
    if (typeof name !== "string" || name.length === 0) refuse(`creditTypes[${i}] is ${described(t)}: give a name, or { name, description }`);
    return name;
  });
  if (names.length === 0) refuse("name at least one credit type");
  const twice = names.find((name, i) => names.indexOf(name) !== i);
  if (twice !== undefined) refuse(`\`creditTypes\` names ${JSON.stringify(twice)} twice: give each credit type once`);
  return names;
}

function checkRateLimit(rateLimit: unknown): void {
  if (typeof rateLimit === "string") {
    refuse(`\`rateLimit\` is ${described(rateLimit)}: give the default limit as { default: ${JSON.stringify(rateLimit)} }`);
  }
  if (!falseOrObject("rateLimit", rateLimit, "{ default, redisUrl, keyPrefix, onStoreError } or { gate }")) return;
  if ("gate" in rateLimit) return gate("rateLimit", rateLimit, ["checkMetered"], "its limits");
  noUnknownKeys("rateLimit", rateLimit, ["default", "redisUrl", "keyPrefix", "onStoreError", "gate"]);
  const { default: limit, redisUrl, keyPrefix, onStoreError } = rateLimit;
  if (typeof limit === "string") parseLimit(limit);
  else if (limit !== undefined && limit !== false) refuse(`\`rateLimit.default\` is ${described(limit)}: give "<max>/<window>", e.g. "60/1m", or false for none`);
  if (redisUrl !== undefined && (typeof redisUrl !== "string" || !/^rediss?:\/\/\S/i.test(redisUrl))) {
    // Only the scheme is shown: a URL may carry a password.
    const scheme = typeof redisUrl === "string" ? /^([a-z][a-z0-9+.-]*):\/\//i.exec(redisUrl)?.[1] : undefined;
    const given = typeof redisUrl !== "string" ? described(redisUrl) : scheme ? `a ${scheme}:// URL` : "a string that is not a URL";
    refuse(`\`rateLimit.redisUrl\` is ${given}: give a redis:// or rediss:// URL, e.g. "redis://127.0.0.1:6379"`);
  }
  if (keyPrefix !== undefined && typeof keyPrefix !== "string") refuse(`\`rateLimit.keyPrefix\` is ${described(keyPrefix)}: give a string, e.g. "credits:rl:"`);
  if (onStoreError !== undefined && onStoreError !== "closed" && onStoreError !== "open") {
    refuse(`\`rateLimit.onStoreError\` is ${described(onStoreError)}: give "closed" (refuse calls while the store does not answer) or "open" (let them run)`);
  }
}

function checkIdempotency(idempotency: unknown): void {
  if (!falseOrObject("idempotency", idempotency, "{ ttlMs, staleAfterMs, maxResultBytes } or { gate }")) return;
  if ("gate" in idempotency) return gate("idempotency", idempotency, ["begin"], "its settings");
  noUnknownKeys("idempotency", idempotency, ["ttlMs", "staleAfterMs", "maxResultBytes", "gate"]);
  milliseconds("idempotency.ttlMs", idempotency.ttlMs, MAX_DURATION_MS, "86400000 (24 h)");
  milliseconds("idempotency.staleAfterMs", idempotency.staleAfterMs, MAX_DURATION_MS, "3600000 (1 h)");
  wholeNumber("idempotency.maxResultBytes", idempotency.maxResultBytes, "1000000");
}

const LOGGER_METHODS = ["child", "debug", "info", "warn", "error"] as const;

function checkLogger(logger: unknown): void {
  if (logger === undefined) return;
  const forms = "give a pino logger (pino(), or an object with child, debug, info, warn and error functions), or leave it out";
  if (logger === null || (typeof logger !== "object" && typeof logger !== "function")) refuse(`\`logger\` is ${described(logger)}: ${forms}`);
  const missing = LOGGER_METHODS.filter((m) => !isFunction((logger as Record<string, unknown>)[m]));
  if (missing.length > 0) refuse(`\`logger\` is an object without ${missing.join(", ")} function${missing.length > 1 ? "s" : ""}: ${forms}`);
}

const OBSERVER_METHODS: readonly (keyof ChargeObserver)[] = Object.keys({
  charged: true,
  settled: true,
  meterFailed: true,
  refunded: true,
  refused: true,
  estimatorFallback: true,
  transactionFailed: true,
  actualCostMismatch: true,
  lateSettlement: true,
} satisfies Record<keyof ChargeObserver, true>) as (keyof ChargeObserver)[];

function checkObservers(observers: unknown): void {
  if (observers === undefined) return;
  if (!Array.isArray(observers)) refuse(`\`observers\` is ${described(observers)}: give an array of charge observers, e.g. observers: [myObserver]`);
  observers.forEach((observer: unknown, i) => {
    if (observer === null || typeof observer !== "object") {
      refuse(`\`observers[${i}]\` is ${described(observer)}: give a charge observer, an object with ${OBSERVER_METHODS.join(", ")} functions`);
    }
    const missing = OBSERVER_METHODS.filter((m) => !isFunction((observer as Record<string, unknown>)[m]));
    if (missing.length > 0) {
      refuse(`\`observers[${i}]\` has no ${missing.join(", ")} function${missing.length > 1 ? "s" : ""}: a charge observer has every one of ${OBSERVER_METHODS.join(", ")} (one that does nothing: () => {})`);
    }
  });
}

function checkRecovery(recovery: unknown): void {
  if (!falseOrObject("recovery", recovery, "{ intervalMs, settleTimeoutMs, batchSize, afterPass }")) return;
  noUnknownKeys("recovery", recovery, ["intervalMs", "settleTimeoutMs", "batchSize", "afterPass"]);
  milliseconds("recovery.intervalMs", recovery.intervalMs, MAX_TIMER_MS, "5000");
  milliseconds("recovery.settleTimeoutMs", recovery.settleTimeoutMs, MAX_DURATION_MS, "3600000 (1 h)");
  wholeNumber("recovery.batchSize", recovery.batchSize, "100");
  optionalFunction("recovery.afterPass", recovery.afterPass, "afterPass: async () => { … }");
}

function checkObject(path: string, value: unknown, keys: readonly string[]): value is Record<string, unknown> {
  if (value === undefined) return false;
  if (!isPlainObject(value)) refuse(`\`${path}\` is ${described(value)}: give { ${keys.join(", ")} }, or leave it out`);
  noUnknownKeys(path, value, keys);
  return true;
}

/**
 * Every option of createCredits (the CreditsOptions interface, the context readers included): the
 * compiler keeps this list whole, so an option added to the interface is known here too.
 */
export function checkOptions<K extends string>(options: Record<string, unknown>, known: Record<K, true>): void {
  noUnknownKeys(undefined, options, Object.keys(known));
  checkDatabase(options.database);
  if (options.migrate !== undefined && typeof options.migrate !== "boolean") {
    refuse(`\`migrate\` is ${described(options.migrate)}: give true (the default) or false`);
  }
  creditTypeNames(options.creditTypes);
  checkRateLimit(options.rateLimit);
  checkIdempotency(options.idempotency);
  checkLogger(options.logger);
  const message = options.unauthenticatedMessage;
  if (message !== undefined && (typeof message !== "string" || message.trim() === "")) {
    refuse(`\`unauthenticatedMessage\` is ${described(message)}: give the message of a call without a caller, e.g. "Sign in with your API key"`);
  }
  checkObservers(options.observers);
  if (checkObject("ledger", options.ledger, ["maxBatch", "maxInFlight"])) {
    const ledger = options.ledger as Record<string, unknown>;
    wholeNumber("ledger.maxBatch", ledger.maxBatch, "100");
    wholeNumber("ledger.maxInFlight", ledger.maxInFlight, "2");
  }
  checkRecovery(options.recovery);
  if (checkObject("lease", options.lease, ["ttlMs"])) milliseconds("lease.ttlMs", (options.lease as Record<string, unknown>).ttlMs, MAX_TIMER_MS, "15000");
  optionalFunction("clock", options.clock, "clock: () => new Date()");
}
