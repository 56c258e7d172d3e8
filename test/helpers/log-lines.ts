/** A pino destination that keeps every JSON log line written to it, for tests that assert what was logged. */
import { Writable } from "node:stream";

export interface CapturedLogLines {
  /** Every line written so far, parsed. */
  readonly lines: Record<string, any>[];
  /** Pass as `logDestination` (startTestServer) or to createLogger. */
  readonly destination: Writable;
}

export function captureLogLines(): CapturedLogLines {
  const lines: Record<string, any>[] = [];
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, destination };
}
