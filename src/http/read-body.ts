/**
 * Reads a request body up to a byte limit; larger bodies are refused before they are buffered whole.
 * The body must be UTF-8 (JSON's encoding): bytes that are not are refused, never replaced with
 * U+FFFD, which would run (and charge) a call with text the client never sent.
 */
import type { IncomingMessage } from "node:http";

export class BodyTooLargeError extends Error {
  constructor(public readonly limit: number) {
    super(`Request body is larger than ${limit} bytes`);
  }
}

export class BodyNotUtf8Error extends Error {
  constructor() {
    super("The request body is not valid UTF-8: send JSON encoded as UTF-8");
  }
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** Whether the request's Content-Length already says its body is over `limit`. */
export function declaredTooLarge(req: IncomingMessage, limit: number): boolean {
  const declared = Number(req.headers["content-length"]);
  return Number.isFinite(declared) && declared > limit;
}

export async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  if (declaredTooLarge(req, limit)) throw new BodyTooLargeError(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new BodyTooLargeError(limit);
    chunks.push(chunk as Buffer);
  }
  try {
    return UTF8.decode(Buffer.concat(chunks));
  } catch {
    throw new BodyNotUtf8Error();
  }
}
