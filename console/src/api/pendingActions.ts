/**
 * The admin actions whose outcome is not known yet, and the Idempotency-Key each was sent with: one
 * store for the whole tab (module level), so it outlives the form that sent them (the admin goes to
 * the Ledger and back while a grant runs) and follows what is sent rather than how the form got there.
 *
 * An action is known by its signature: its document and its exact variables (keys sorted). A send
 * whose signature equals one still running or unanswered (a lost answer, a 5xx, a 409) reuses that
 * key, so an admin who clears the reason and types it again, or comes back and enters the same grant,
 * gets the server's replay of the first send (or its 409 while the first still runs), never a second
 * write. A success, or a refusal the server decided (4xx other than 409), ends the entry: the same
 * values sent after that are a new intended action, with a new key.
 *
 * The form that sent an action owns its entry while mounted; once it is gone the entry is an orphan,
 * which a form of the same scope (the subscription's page again) shows: still running, no answer
 * (with a Retry, same key), or how it ended meanwhile.
 */
import type { ReactNode } from "react";
import type { TypedDocumentString } from "../generated/graphql";
import { ApiError, newIdempotencyKey, request } from "./client";

export type PendingState = "running" | "unanswered" | "done" | "refused";

export interface PendingAction {
  readonly signature: string;
  readonly key: string;
  /** Where it is shown: a subscription's id, or "new-subscription". */
  readonly scope: string;
  /** What it is, in the console's words (user text isolated), for the orphan's note. */
  readonly label: ReactNode;
  readonly document: TypedDocumentString<unknown, unknown>;
  readonly variables: unknown;
  readonly sentAt: number;
  state: PendingState;
  /** Sends of it in flight now (a Retry may overlap the first send). */
  inFlight: number;
  /** The form (hook instance) that sent it last, while it is mounted. */
  owner: symbol | undefined;
  error?: ApiError;
}

const entries = new Map<string, PendingAction>();
const listeners = new Set<() => void>();
let snapshot: readonly PendingAction[] = [];

function changed(): void {
  snapshot = [...entries.values()].map((entry) => ({ ...entry }));
  for (const listener of listeners) listener();
}

/** JSON with object keys sorted, undefined left out: equal values give equal text. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

export function signatureOf(document: TypedDocumentString<unknown, unknown>, variables: unknown): string {
  return `${document.toString()}\n${stableJson(variables)}`;
}

/** Whether the server decided (the same send would get the same answer) or the outcome is unknown. */
export function undecided(error: ApiError): boolean {
  return error.status === 0 || error.status === 409 || error.status >= 500;
}

/**
 * A send of `variables` is starting: the entry of the same values still running or unanswered (its
 * key reused), or a new one.
 */
export function beginSend(
  document: TypedDocumentString<unknown, unknown>,
  variables: unknown,
  owner: symbol | undefined,
  describe: { scope: string; label: ReactNode },
  /**
   * The form's own last send of these values, still without an answer there: its key, even if
   * another send of it has ended it here since (that form's Retry must get the replay, not a new write).
   */
  unresolved?: PendingAction,
): PendingAction {
  const signature = signatureOf(document, variables);
  let entry = unresolved?.signature === signature ? unresolved : entries.get(signature);
  if (entry === unresolved && entry && entries.get(signature) !== entry) {
    entries.set(signature, entry);
    entry.state = "running";
  }
  if (!entry || entry.state === "done" || entry.state === "refused") {
    entry = { signature, key: newIdempotencyKey(), ...describe, document, variables, sentAt: Date.now(), state: "running", inFlight: 0, owner };
    entries.set(signature, entry);
  }
  entry.inFlight++;
  entry.state = "running";
  entry.owner = owner;
  changed();
  return entry;
}

/** A send of `entry` ended: answered (`error` undefined), refused, or with no known outcome. */
export function endSend(entry: PendingAction, error: ApiError | undefined): void {
  entry.inFlight = Math.max(0, entry.inFlight - 1);
  // Ended already by another send of it (a Retry's answer came first): nothing more to say.
  if (entries.get(entry.signature) !== entry || entry.state === "done" || entry.state === "refused") return;
  if (error && undecided(error)) {
    if (entry.inFlight === 0) entry.state = "unanswered";
    entry.error = error;
  } else {
    entry.state = error ? "refused" : "done";
    entry.error = error;
    // Its form is there to say how it ended; an orphan keeps it for the next form of its scope.
    if (entry.owner) entries.delete(entry.signature);
  }
  changed();
}

/** The form that sent these is gone: its actions become orphans, shown by the next form of their scope. */
export function releaseOwner(owner: symbol): void {
  let any = false;
  for (const entry of entries.values()) {
    if (entry.owner !== owner) continue;
    entry.owner = undefined;
    any = true;
    // Ended while its form was still there (which said so): nothing left to show.
    if (entry.state === "done" || entry.state === "refused") entries.delete(entry.signature);
  }
  if (any) changed();
}

/** An orphan's ending was shown: it is forgotten (one still running or unanswered never is: its key matters). */
export function forgetEnded(signature: string): void {
  const entry = entries.get(signature);
  if (entry && (entry.state === "done" || entry.state === "refused")) {
    entries.delete(signature);
    changed();
  }
}

/**
 * An orphan sent again as it was (its Retry): same variables, same key. It stays an orphan, so the
 * form of its scope shows how this send ends too.
 */
export async function resend(signature: string): Promise<{ result?: unknown; error?: ApiError }> {
  const found = entries.get(signature);
  if (!found || found.owner !== undefined) return {};
  const entry = beginSend(found.document, found.variables, undefined, { scope: found.scope, label: found.label });
  try {
    const result = await request(entry.document, entry.variables, { idempotencyKey: entry.key });
    endSend(entry, undefined);
    return { result };
  } catch (err) {
    const error = err instanceof ApiError ? err : new ApiError(String(err), "CLIENT_ERROR", 0);
    endSend(entry, error);
    return { error };
  }
}

export function subscribePending(listener: () => void): () => void {
  listeners.add(listener);
  return () => void listeners.delete(listener);
}

/** The entries as they are now (a new array after each change, for useSyncExternalStore). */
export function pendingSnapshot(): readonly PendingAction[] {
  return snapshot;
}
