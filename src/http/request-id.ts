/** Request ids: a well-formed `x-request-id` from the caller is kept (so a trace spans services), else a new one. */
import { randomUUID } from "node:crypto";

const ACCEPTABLE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value && ACCEPTABLE_ID.test(value) ? value : randomUUID();
}
