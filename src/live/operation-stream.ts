/**
 * One graphql-ws operation's results as graphql-ws consumes them (src/live/websocket-server.ts wraps
 * every subscription's result stream in one, through graphql-ws's onOperation). It does two things:
 *
 * - **Nothing after complete.** graphql-ws handles a client's `complete` by returning the operation's
 *   iterator, but a result already being produced goes on: an event taken from the hub is executed
 *   (`lastEntry { operation }` is a database read, through live.entry) while the complete arrives,
 *   and graphql-js's iterator then resolves the pending next() with that result, which graphql-ws
 *   sent as one more `next` after the complete (an outside audit: 2–221 ms after the server's `pong`
 *   to a ping sent right after the complete). Here a next() that resolves after return() was called
 *   answers `done`, whatever it got. This is the last point before the send: from next() resolving
 *   to graphql-ws's socket.send there are only promise continuations (its for-await, `await onNext`,
 *   which is synchronous here, and JSON.stringify), no I/O, so no message of the client can be
 *   handled in between; and graphql-ws's complete handler calls return() synchronously, so
 *   everything sent after the complete was handled is checked against it.
 * - **How long the socket has not taken a result.** graphql-ws asks for the next result only once
 *   the previous one was written (it awaits ws's send callback, which comes when the bytes reach the
 *   kernel). So from the moment a result is handed out to the next call of next(), that result is
 *   being sent; `sendingSince` says since when. A result still unsent after seconds means the kernel's
 *   send buffer has been full that long: the client does not read (websocket-server.ts drops it).
 */
const DONE: IteratorResult<never, undefined> = { value: undefined, done: true };

export class OperationStream<T> implements AsyncIterableIterator<T> {
  private ended = false;
  private handedOutAt: number | undefined;

  constructor(
    private readonly source: AsyncIterator<T>,
    private readonly now: () => number = Date.now,
  ) {}

  /** When the result being sent now was handed to graphql-ws; undefined when none is being sent. */
  get sendingSince(): number | undefined {
    return this.handedOutAt;
  }

  async next(): Promise<IteratorResult<T>> {
    // Asked for the next result: the one before it was written.
    this.handedOutAt = undefined;
    if (this.ended) return DONE;
    let result: IteratorResult<T>;
    try {
      result = await this.source.next();
    } catch (err) {
      if (this.ended) return DONE;
      throw err;
    }
    // Completed (or dropped) while this result was being produced: it is not sent.
    if (this.ended || result.done) return DONE;
    this.handedOutAt = this.now();
    return result;
  }

  /**
   * Ends the stream at once (the flag is set before anything is awaited). `sendingSince` is kept: a
   * send under way when the client completed is still unsent on the socket.
   */
  async return(): Promise<IteratorResult<T>> {
    if (this.ended) return DONE;
    this.ended = true;
    await this.source.return?.();
    return DONE;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
