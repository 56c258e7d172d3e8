/**
 * What a retry must repeat exactly: the field (its schema coordinate) and its arguments. The hash is
 * SHA-256 over canonical JSON (object keys sorted, undefined left out), so the order in which a
 * client wrote its input fields does not matter, but any changed value does.
 */
import { createHash } from "node:crypto";

export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? "null" : canonicalJson(item))).join(",")}]`;
  const record = value as Record<string, unknown>;
  const members = Object.keys(record)
    .filter((key) => record[key] !== undefined)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`);
  return `{${members.join(",")}}`;
}

export function requestHash(coordinate: string, args: Record<string, unknown>): string {
  return createHash("sha256").update(canonicalJson({ field: coordinate, args })).digest("hex");
}
