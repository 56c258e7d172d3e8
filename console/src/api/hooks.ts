/** React hooks over the client: a query that refetches when its variables change, and an idempotent action. */
import { useCallback, useEffect, useRef, useState } from "react";
import type { TypedDocumentString } from "../generated/graphql";
import { ApiError, newIdempotencyKey, request } from "./client";

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
  run: (variables: Variables) => Promise<Result | undefined>;
  pending: boolean;
  error: ApiError | undefined;
  /** Forget the key: the next run is a new intended action. */
  reset: () => void;
}

/**
 * An admin mutation sent with an Idempotency-Key. The key belongs to one intended action: it is
 * made on the first run, kept while that action has not succeeded (so a retry after a network
 * error or a timeout reuses it, and the server acts once), and dropped on success or reset. A run
 * while one is in flight is ignored, so a double click sends one request.
 */
export function useIdempotentAction<Result, Variables>(document: TypedDocumentString<Result, Variables>): ActionState<Result, Variables> {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<ApiError>();
  const key = useRef<string | undefined>(undefined);
  const inFlight = useRef(false);

  const run = useCallback(
    async (variables: Variables) => {
      if (inFlight.current) return undefined;
      inFlight.current = true;
      key.current ??= newIdempotencyKey();
      setPending(true);
      setError(undefined);
      try {
        const result = await request(document, variables, { idempotencyKey: key.current });
        key.current = undefined;
        return result;
      } catch (err) {
        const apiError = asApiError(err);
        // A refusal the server decided (bad input, forbidden…) is final for this key's arguments. A
        // lost answer, a server error or a 409 (the first send still running) is not: the key is kept,
        // so the retry is answered with the first send's outcome instead of acting again.
        const undecided = apiError.status === 0 || apiError.status === 409 || apiError.status >= 500;
        if (!undecided) key.current = undefined;
        setError(apiError);
        return undefined;
      } finally {
        inFlight.current = false;
        setPending(false);
      }
    },
    [document],
  );
  const reset = useCallback(() => {
    key.current = undefined;
    setError(undefined);
  }, []);
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
