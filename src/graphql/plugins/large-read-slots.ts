/**
 * Large reads, a few at a time per caller. The page budget (page-budget.ts) bounds what one request
 * may ask for; it does not bound how many such requests one caller runs at once. An outside audit
 * (a noisy neighbour): one customer paging its own ledger at the budget (two pages of 1,000 entries
 * with every field, about 0.9 MB and 70 ms of the server's CPU each) from 40 workers slowed another
 * customer's metered calls from 10 ms to 3-4 s at p99, and three such customers to 20-30 s; the
 * event loop spent its time building their answers. REQUEST_LIMIT (1,200 a minute per caller) is a
 * rate, far above what those answers cost.
 *
 * So a query asking for more than LARGE_READ_ITEMS list items is a large read, and each caller (the
 * token's subject) runs at most LARGE_READS_AT_ONCE of them at once on an instance; more wait their
 * turn, in arrival order, and past LARGE_READS_WAITING waiting a request is refused with
 * RATE_LIMITED (429, retryAfterSeconds 1). A caller's reads then cost others at most a couple of
 * answers' worth of CPU at a time, whatever its concurrency. Small reads (the console's pages of 20,
 * a balance, a single page of 200) are never held, and mutations never: their holds are the charge
 * path's business.
 *
 * The slot is taken once the operation is resolved (the page count needs its variables) and given
 * back when the response is about to be sent: execution, where the answer's objects are built, is
 * inside it; serializing the answer is not.
 */
import type { ApolloServerPlugin } from "@apollo/server";
import { RateLimitedError } from "../../errors/errors.js";
import type { Viewer } from "../../auth/viewer.js";
import { MAX_PAGE_ITEMS, operationPageItems } from "../validation/page-budget.js";

/** Above this many list items a query is a large read (a ledger page of 1,000 is; the console's pages of 20 and 50 are not). */
export const LARGE_READ_ITEMS = 200;
/** Large reads one caller runs at once on an instance. */
export const LARGE_READS_AT_ONCE = 2;
/** Large reads of one caller waiting for a slot; one more is refused. */
export const LARGE_READS_WAITING = 16;

/** Slots per key: at most `atOnce` held, at most `waiting` queued behind them. */
export class CallerSlots {
  private readonly callers = new Map<string, { running: number; queue: (() => void)[] }>();

  constructor(
    private readonly atOnce: number,
    private readonly waiting: number,
  ) {}

  /** Resolves with the release once `key` has a slot; throws RateLimitedError when its queue is full. */
  async acquire(key: string): Promise<() => void> {
    let caller = this.callers.get(key);
    if (!caller) {
      caller = { running: 0, queue: [] };
      this.callers.set(key, caller);
    }
    if (caller.running >= this.atOnce) {
      if (caller.queue.length >= this.waiting) {
        throw new RateLimitedError(
          `Too many large reads (over ${LARGE_READ_ITEMS} list items) at once: at most ${this.atOnce} run and ${this.waiting} wait per caller; retry in a second`,
          1,
        );
      }
      const held = caller;
      await new Promise<void>((resolve) => held.queue.push(resolve));
    } else caller.running++;
    return this.releaseOnce(key);
  }

  /** Callers with a slot or a request waiting for one. */
  get size(): number {
    return this.callers.size;
  }

  /** Gives the slot to the next waiting request (which counts as running at once), or frees it. */
  private releaseOnce(key: string): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const caller = this.callers.get(key);
      if (!caller) return;
      const next = caller.queue.shift();
      if (next) next();
      else if (--caller.running === 0) this.callers.delete(key);
    };
  }
}

/** Holds each caller's large queries to LARGE_READS_AT_ONCE at a time (above). */
export function largeReadSlotsPlugin<Ctx extends { viewer: Viewer | undefined }>(
  slots = new CallerSlots(LARGE_READS_AT_ONCE, LARGE_READS_WAITING),
): ApolloServerPlugin<Ctx> {
  return {
    async requestDidStart() {
      let release: (() => void) | undefined;
      let answered = false;
      return {
        async didResolveOperation({ schema, document, operation, request, contextValue }) {
          // Without a caller the resolvers refuse every paged field anyway; mutations are not reads.
          if (!operation || operation.operation !== "query" || !contextValue.viewer) return;
          const items = operationPageItems(schema, document, operation, request.variables ?? {});
          // Over the page budget it is refused (page-budget.ts), not run.
          if (items <= LARGE_READ_ITEMS || items > MAX_PAGE_ITEMS) return;
          const granted = await slots.acquire(contextValue.viewer.id);
          // Apollo runs the plugins' didResolveOperation side by side: another one's refusal may
          // have answered the request while this one waited for its slot.
          if (answered) granted();
          else release = granted;
        },
        async willSendResponse() {
          answered = true;
          release?.();
        },
      };
    },
  };
}
