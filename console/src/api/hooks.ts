/** React hooks over the client: a query that refetches when its variables change, and an idempotent action. */
import { useCallback, useEffect, useRef, useState, type ReactNode } from "react";
import type { TypedDocumentString } from "../generated/graphql";
import { ApiError, request } from "./client";
import { beginSend, endSend, releaseOwner, undecided, type PendingAction } from "./pendingActions";

/** A 409 (the same key's first send still running) is asked again this often, at most this many times, while its form is there. */
const STILL_RUNNING_POLL_MS = 2_000;
const STILL_RUNNING_POLLS = 30;

export interface QueryState<Result> {
  data: Result | undefined;
  error: ApiError | undefined;
  loading: boolean;
  refetch: () => Promise<void>;
}

/**
 * An error that the same request sent again may get past: the server did not answer, failed (5xx),
 * or was still running the first send (409). Shown with a Retry; for an admin action, its key is kept.
 */
export function isRetryable(error: ApiError | undefined): boolean {
  return error !== undefined && (error.code === "NETWORK_ERROR" || error.status === 409 || error.status >= 500);
}

/** The server is still running an earlier send with this Idempotency-Key (409): not a failure, a wait. */
export function stillRunning(error: ApiError | undefined): boolean {
  return error?.status === 409;
}

function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError((err as Error).message ?? String(err), "CLIENT_ERROR", 0);
}

/**
 * Runs the query now and whenever its variables change (compared as JSON) or `reloadKey` does
 * (a change made elsewhere on the page); `skip` holds it back.
 */
export function useQuery<Result, Variables>(
  document: TypedDocumentString<Result, Variables>,
  variables: Variables,
  options: { skip?: boolean; reloadKey?: number } = {},
): QueryState<Result> {
  const [data, setData] = useState<Result>();
  const [error, setError] = useState<ApiError>();
  const [loading, setLoading] = useState(!options.skip);
  const key = JSON.stringify(variables);
  const reloadKey = options.reloadKey ?? 0;
  const latest = useRef(0);

  const run = useCallback(async () => {
    const ticket = ++latest.current;
    setLoading(true);
    try {
      const result = await request(document, JSON.parse(key) as Variables);
      if (ticket === latest.current) {
        setData(result);
        setError(undefined);
      }
    } catch (err) {
      if (ticket === latest.current) setError(asApiError(err));
    } finally {
      if (ticket === latest.current) setLoading(false);
    }
    // reloadKey is a dependency on purpose: a new value runs the query again.
  }, [document, key, reloadKey]);

  useEffect(() => {
    if (!options.skip) void run();
  }, [run, options.skip]);

  return { data, error, loading, refetch: run };
}

export interface ActionState<Result, Variables> {
  /** Sends `variables` (`describe`: where and how an orphan of it is shown, see ./pendingActions.ts). */
  run: (variables: Variables, describe?: ActionDescription) => Promise<Result | undefined>;
  pending: boolean;
  error: ApiError | undefined;
  /** Clears the error shown (the form changed). The key stays with the values it was sent with. */
  reset: () => void;
}

export interface ActionDescription {
  /** A subscription's id, or "new-subscription": the form that shows it if this one is gone. */
  scope: string;
  /** What the action is, in the console's words. */
  label: ReactNode;
}

/**
 * An admin mutation sent with an Idempotency-Key tied to what is sent (./pendingActions.ts): the
 * same values as a send whose outcome is unknown (a lost answer, a 5xx, a 409 while the first
 * still runs) reuse its key, whether sent by Retry, typed again, or entered again after leaving
 * the page, so the server acts once; a success or a refusal the server decided drops it. A run
 * while one is in flight is ignored, so a double click sends one request. A 409 (an earlier send of
 * the same key still running, e.g. from before the admin left the page) is asked again every
 * STILL_RUNNING_POLL_MS while the form is there, `error` saying so meanwhile: the answer is the
 * first send's outcome.
 */
export function useIdempotentAction<Result, Variables>(document: TypedDocumentString<Result, Variables>): ActionState<Result, Variables> {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError>();
  const inFlight = useRef(false);
  // This form, as the owner of what it sent (orphaned once it unmounts).
  const owner = useRef(Symbol("action-form"));
  // This form's last send whose outcome it does not know: the same values sent again reuse its key.
  const unresolved = useRef<PendingAction>(undefined);
  const mounted = useRef(true);
  useEffect(() => {
    const me = owner.current;
    mounted.current = true;
    return () => {
      mounted.current = false;
      releaseOwner(me);
    };
  }, []);

  const run = useCallback(
    async (variables: Variables, describe: ActionDescription = { scope: "", label: "" }) => {
      if (inFlight.current) return undefined;
      inFlight.current = true;
      const entry = beginSend(document as TypedDocumentString<unknown, unknown>, variables, owner.current, describe, unresolved.current);
      setPending(true);
      setError(undefined);
      try {
        for (let asked = 1; ; asked++) {
          try {
            const result = await request(document, variables, { idempotencyKey: entry.key });
            unresolved.current = undefined;
            endSend(entry, undefined);
            setError(undefined);
            return result;
          } catch (err) {
            const apiError = asApiError(err);
            if (stillRunning(apiError) && mounted.current && asked < STILL_RUNNING_POLLS) {
              setError(apiError);
              await new Promise((resolve) => setTimeout(resolve, STILL_RUNNING_POLL_MS));
              continue;
            }
            // A refusal the server decided (bad input, forbidden…) is final for these values. A lost
            // answer, a server error or a 409 is not: the key stays with these values, so sending
            // them again is answered with the first send's outcome.
            unresolved.current = undecided(apiError) ? entry : undefined;
            endSend(entry, apiError);
            setError(apiError);
            return undefined;
          }
        }
      } finally {
        inFlight.current = false;
        setPending(false);
      }
    },
    [document],
  );
  const reset = useCallback(() => setError(undefined), []);
  return { run, pending, error, reset };
}

/** `value`, once it has stopped changing for `ms` (a filter typed into a field queries once, not per key). */
export function useDebounced<T>(value: T, ms = 300): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}
