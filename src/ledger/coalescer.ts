/**
 * Natural batching for database statements: callers submit one item each and get their own result
 * back, while the items that arrive together, or while earlier statements are still running, go to
 * the database as one statement. Nothing ever waits for a timer: an idle coalescer sends a lone item
 * at once (after the current turn of the event loop, so simultaneous arrivals share it); under load,
 * each finished statement makes room for the next one, which carries everything that queued up in
 * the meantime. Fewer, larger statements mean fewer round trips and commits for the same work.
 *
 * With `keysOf`, items that share a key are never in two statements at once, and leave in arrival
 * order: a statement can then treat them as one queue (the hot subscription's holds). An item may
 * have several keys (an operation holding credits of several balances): it waits until every one of
 * them is free, and an item of any of its keys that arrived later waits behind it.
 */

export interface CoalescerOptions<T, R> {
  /** Runs one statement for `batch`; resolves to one result per item, in the same order. */
  run(batch: T[]): Promise<R[]>;
  /** Most items per statement. */
  maxBatch: number;
  /** Most statements running at once. */
  maxInFlight: number;
  keysOf?: (item: T) => readonly string[];
}

interface Waiting<T, R> {
  item: T;
  keys: readonly string[];
  resolve(result: R): void;
  reject(err: unknown): void;
}

export class Coalescer<T, R> {
  private queue: Waiting<T, R>[] = [];
  private readonly busyKeys = new Set<string>();
  private inFlight = 0;
  private scheduled = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: CoalescerOptions<T, R>) {
    if (options.maxBatch < 1 || options.maxInFlight < 1) throw new Error("maxBatch and maxInFlight must be at least 1");
  }

  submit(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, keys: this.options.keysOf?.(item) ?? [], resolve, reject });
      this.schedule();
    });
  }

  /** Items queued or running now. */
  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  /** Resolves once nothing is queued or running (graceful shutdown, tests). */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.takeBatch();
      if (batch.length === 0) return; // every queued key is busy: a finishing statement dispatches again
      this.send(batch);
    }
  }

  /** Takes, in arrival order, up to maxBatch items whose key no running statement holds. */
  private takeBatch(): Waiting<T, R>[] {
    const batch: Waiting<T, R>[] = [];
    const left: Waiting<T, R>[] = [];
    const blocked = new Set<string>();
    for (const waiting of this.queue) {
      const free = waiting.keys.every((key) => !this.busyKeys.has(key) && !blocked.has(key));
      if (free && batch.length < this.options.maxBatch) {
        batch.push(waiting);
      } else {
        // Once one item of a key stays behind, the later ones stay too: a key keeps its order.
        for (const key of waiting.keys) blocked.add(key);
        left.push(waiting);
      }
    }
    this.queue = left;
    for (const waiting of batch) for (const key of waiting.keys) this.busyKeys.add(key);
    return batch;
  }

  private send(batch: Waiting<T, R>[]): void {
    this.inFlight++;
    let settled: Promise<R[]>;
    try {
      settled = this.options.run(batch.map((w) => w.item));
    } catch (err) {
      settled = Promise.reject(err);
    }
    settled.then(
      (results) => {
        if (results.length !== batch.length) {
          const err = new Error(`a batch of ${batch.length} returned ${results.length} results`);
          batch.forEach((w) => w.reject(err));
        } else {
          batch.forEach((w, i) => w.resolve(results[i]));
        }
      },
      (err) => batch.forEach((w) => w.reject(err)),
    ).finally(() => {
      this.inFlight--;
      for (const waiting of batch) for (const key of waiting.keys) this.busyKeys.delete(key);
      // What queued up while this statement ran goes now, in one statement.
      this.dispatch();
      if (this.pending === 0) this.idleWaiters.splice(0).forEach((resolve) => resolve());
    });
  }
}
