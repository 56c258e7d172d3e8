/**
 * The credits core's per-request state for a host whose context knows nothing of it: kept in a
 * WeakMap keyed by the host's context object, created on the request's first use from the host's
 * option functions (who is calling, which subscription, the request id …), gone with the context.
 * What the host does not say is read from the HTTP request Apollo received (the Idempotency-Key
 * header), which the library's plugin notes when the request starts.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { Viewer } from "../auth/viewer.js";
import { ChargeCollector } from "../credits/charge-collector.js";
import type { CreditsRequest, RequestOf } from "../credits/credits-request.js";
import type { Database } from "../db/database.js";
import { InternalError, UnauthenticatedError } from "../errors/errors.js";
import { createLoaders } from "../graphql/loaders.js";
import { userIdProblem } from "../util/text.js";
import { described } from "./option-checks.js";

/** How the credits core reads the host's context. Every function is optional but `caller`. */
export interface ContextReaders<TContext> {
  /**
   * The caller ({ id, isAdmin }), or undefined when anonymous (UNAUTHENTICATED). Throw the package's
   * UnauthenticatedError when the credentials are bad (UNAUTHENTICATED with its message); any other
   * throw, here or in another reader, is a bug of the host: logged at error, answered INTERNAL_SERVER_ERROR.
   * So is an answer of another shape: `id` a user id (a non-empty string), `isAdmin` true, false or left out (false).
   */
  caller(context: TContext): Viewer | undefined | Promise<Viewer | undefined>;
  /** The subscription to charge when a metered field has no subscriptionId argument. */
  subscription?(context: TContext): string | undefined;
  /** The request id the host logs with (a random UUID otherwise). */
  requestId?(context: TContext): string | undefined;
  /**
   * The Idempotency-Key the client sent. Without this reader the library reads the request's
   * `Idempotency-Key` header itself (unless `idempotency: false`).
   */
  idempotencyKey?(context: TContext): string | undefined;
  /** The client's address: the anonymous rate-limit key. */
  clientAddress?(context: TContext): string | undefined;
  /** True once the client went away: its results are then refunded, never delivered. */
  clientGone?(context: TContext): boolean;
}

/** The neutral answer to a metered call without a caller: the host's own way of signing in is its business. */
export const DEFAULT_UNAUTHENTICATED_MESSAGE = "Authentication required: sign in and send the request with your credentials";

/** How the state is completed beyond the host's readers. */
export interface RequestStateDefaults {
  /** The request's HTTP header (lower-case name), as Apollo received it; undefined outside HTTP. */
  header(context: object, name: string): string | undefined;
  /** Read the Idempotency-Key header when the host gives no idempotencyKey reader. */
  idempotencyHeader: boolean;
  /** The UNAUTHENTICATED message of a metered call without a caller. */
  unauthenticatedMessage: string;
}

/** The names of the host's context readers, as its options call them (in logs). */
type ReaderName = "caller" | "subscription" | "requestId" | "idempotencyKey" | "clientAddress" | "clientGone";

/** Logged at error when a reader of the host throws: a bug in the host, whose metered calls answer INTERNAL_SERVER_ERROR. */
function readerThrew(reader: ReaderName): string {
  const outcome = reader === "clientGone" ? "taken as: the client is still there" : "its metered calls answer INTERNAL_SERVER_ERROR";
  return `the host's ${reader}(ctx) threw: a bug in the ${reader} option given to createCredits (${outcome})`;
}

/** Logged at error when caller(ctx) answers something that is not a caller: never spent with, answered INTERNAL_SERVER_ERROR. */
function callerMalformed(problem: string): string {
  return `the host's ${problem}: a bug in the caller option given to createCredits (its metered calls answer INTERNAL_SERVER_ERROR)`;
}

/** What is wrong with an id caller(ctx) returned (the rule of every user id: userIdProblem), or undefined. */
function callerIdProblem(id: unknown): string | undefined {
  if (typeof id !== "string" || id === "") return `caller(ctx) returned an id that is not a non-empty string: the id is ${described(id)}`;
  const problem = userIdProblem(id);
  return problem ? `caller(ctx) returned an id that ${problem}` : undefined;
}

/**
 * caller(ctx)'s answer, checked: undefined (or null) is no caller, anything else must be { id, isAdmin }
 * exactly as typed. JavaScript hosts get no type checks, and a truthy isAdmin (1, "false", []) or a
 * missing id would spend as an admin, or as no one, or reach SQL. Only the two fields are kept.
 */
function checkedCaller(answer: unknown): { viewer: Viewer | undefined } | { problem: string } {
  if (answer === undefined || answer === null) return { viewer: undefined };
  if (typeof answer !== "object" || Array.isArray(answer)) {
    return { problem: `caller(ctx) returned ${described(answer)}: return { id, isAdmin } or undefined` };
  }
  const { id, isAdmin } = answer as Record<string, unknown>;
  const idProblem = callerIdProblem(id);
  if (idProblem) return { problem: idProblem };
  // Left out, it is false (the safe side): a JavaScript host's { id } keeps working as a user.
  if (isAdmin !== undefined && typeof isAdmin !== "boolean") {
    return { problem: `caller(ctx) returned a caller whose isAdmin is ${described(isAdmin)}: isAdmin must be true or false` };
  }
  return { viewer: { id: id as string, isAdmin: isAdmin === true } };
}

/** A reader that failed: it threw, or (caller) answered something that is not a caller. */
type ReaderFailure = { reader: ReaderName; err: unknown; malformed?: undefined } | { reader: "caller"; err?: undefined; malformed: string };

function logFailure(logger: Logger, failure: ReaderFailure): void {
  if (failure.malformed !== undefined) logger.error({ event: "credits.caller_malformed" }, callerMalformed(failure.malformed));
  else logger.error({ err: failure.err }, readerThrew(failure.reader));
}

/** The error a request's metered calls answer (masked INTERNAL_SERVER_ERROR) after a reader failed. */
function failureError({ reader, err, malformed }: ReaderFailure): InternalError {
  if (malformed !== undefined) return new InternalError(`the host's ${malformed}`);
  return new InternalError(`the host's ${reader}(ctx) threw`, { cause: err });
}

export function requestStates<TContext>(readers: ContextReaders<TContext>, db: Database, logger: Logger, defaults: RequestStateDefaults): RequestOf {
  const states = new WeakMap<object, Promise<CreditsRequest>>();
  const create = async (context: TContext): Promise<CreditsRequest> => {
    // A reader that throws is the host's bug, not the client's: logged with its error, and the
    // request's metered calls answer INTERNAL_SERVER_ERROR (masked), never "bad credentials".
    const failures: ReaderFailure[] = [];
    const read = <T>(reader: ReaderName, fn: () => T): T | undefined => {
      try {
        return fn();
      } catch (err) {
        failures.push({ reader, err });
        return undefined;
      }
    };
    const requestId = read("requestId", () => readers.requestId?.(context)) ?? randomUUID();
    const requestLogger = logger.child({ requestId });
    let viewer: Viewer | undefined;
    let authError: UnauthenticatedError | InternalError | undefined;
    try {
      const checked = checkedCaller(await readers.caller(context));
      if ("problem" in checked) failures.push({ reader: "caller", malformed: checked.problem });
      else viewer = checked.viewer;
    } catch (err) {
      // The host's own UnauthenticatedError says the credentials were bad, in its words.
      if (err instanceof UnauthenticatedError) authError = err;
      else failures.push({ reader: "caller", err });
    }
    const subscriptionId = read("subscription", () => readers.subscription?.(context));
    const clientAddress = read("clientAddress", () => readers.clientAddress?.(context)) ?? "unknown";
    // Validated where it is used, as the server's header is (1 to 255 printable ASCII characters, else BAD_USER_INPUT).
    const idempotencyKey = readers.idempotencyKey
      ? read("idempotencyKey", () => readers.idempotencyKey!(context))
      : defaults.idempotencyHeader
        ? defaults.header(context as object, "idempotency-key")
        : undefined;
    for (const failure of failures) logFailure(requestLogger, failure);
    if (failures.length > 0) {
      viewer = undefined;
      authError = failureError(failures[0]);
    }
    // No caller: metered fields answer UNAUTHENTICATED in the host's words, not this server's (Bearer tokens).
    if (!viewer && !authError) authError = new UnauthenticatedError(defaults.unauthenticatedMessage);
    let clientGoneFailed = false;
    return {
      requestId,
      viewer,
      authError,
      clientAddress,
      subscriptionId,
      loaders: createLoaders(db),
      charges: new ChargeCollector(),
      logger: requestLogger,
      idempotencyKey,
      // Asked while the request's calls settle: a throw there is logged (once) and taken as "still here".
      clientGone: readers.clientGone
        ? () => {
            try {
              return readers.clientGone!(context);
            } catch (err) {
              if (!clientGoneFailed) requestLogger.error({ err }, readerThrew("clientGone"));
              clientGoneFailed = true;
              return false;
            }
          }
        : undefined,
    };
  };
  return (context) => {
    if (typeof context !== "object" || context === null) throw new Error("createCredits: the GraphQL context must be an object");
    let state = states.get(context);
    if (!state) states.set(context, (state = create(context as TContext)));
    return state;
  };
}
