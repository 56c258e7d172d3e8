/**
 * One subscriber's events between the hub and graphql-ws, as an async iterator. Bounded: a consumer
 * that falls `maxQueued` events behind (its socket cannot take them) is ended with SlowConsumerError
 * instead of having events buffered for it without limit.
 */
export class SlowConsumerError extends Error {
  override name = "SlowConsumerError";
  constructor() {
    super("Too many balance events unsent: the connection is too slow and was dropped. Reconnect to resume.");
  }
}

export class SubscriberQueue<T> implements AsyncIterableIterator<T> {
  private readonly queued: T[] = [];
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private failing: ((err: Error) => void) | undefined;
  private ended = false;
  private failure: Error | undefined;

  constructor(
    private readonly maxQueued: number,
    /** Called once when the iterator ends, however it ends. */
    private readonly onEnd: () => void,
  ) {}

  get size(): number {
    return this.queued.length;
  }

  /** Hands an event to the consumer; false when the subscriber is gone (ended or dropped as slow). */
  push(event: T): boolean {
    if (this.ended) return false;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = this.failing = undefined;
      resolve({ value: event, done: false });
      return true;
    }
    if (this.queued.length >= this.maxQueued) {
      this.fail(new SlowConsumerError());
      return false;
    }
    this.queued.push(event);
    return true;
  }

  /** Ends the iterator with an error (delivered after nothing: the queue is dropped). */
  fail(err: Error): void {
    if (this.ended) return;
    this.queued.length = 0;
    this.failure = err;
    this.finish();
    const reject = this.failing;
    this.waiting = this.failing = undefined;
    reject?.(err);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.queued.length > 0) return Promise.resolve({ value: this.queued.shift() as T, done: false });
    if (this.failure) {
      const err = this.failure;
      this.failure = undefined;
      return Promise.reject(err);
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failing = reject;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.queued.length = 0;
    this.finish();
    const resolve = this.waiting;
    this.waiting = this.failing = undefined;
    resolve?.({ value: undefined, done: true });
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
  }
}
