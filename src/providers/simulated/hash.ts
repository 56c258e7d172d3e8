/**
 * Deterministic "randomness" for the simulated providers: every value is read from SHA-256 digests
 * of a seed, so the same request always produces the same answer (repeatable tests, stable demos)
 * without keeping any state between calls.
 */
import { hash } from "node:crypto";

/** JSON with object keys sorted, so two equal requests built in a different key order hash alike. */
export function canonicalJson(value: unknown): string {
  if (value === undefined) return "null";
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((key: string): boolean => record[key] !== undefined)
    .sort();
  return `{${keys.map((key: string): string => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(",")}}`;
}

// One-shot crypto.hash: the same digests as createHash().update().digest(), without building a Hash
// object each time (about a quarter of the cost for inputs this short). A lead search reads a
// dozen digests, which made the simulator a visible part of a metered call's CPU in the benchmark.
export function sha256Hex(text: string): string {
  return hash("sha256", text, "hex");
}

/** The seed of one simulated call: the operation name plus the request, canonically serialised. */
export function seedOf(operation: string, request: unknown): string {
  return sha256Hex(`${operation}\n${canonicalJson(request)}`);
}

/**
 * An endless stream of numbers read from sha256(seed ":" block) digests. Not a cryptographic
 * generator in any useful sense, only a reproducible one.
 */
export class HashStream {
  private block = 0;
  private buffer: Buffer = Buffer.alloc(0);
  private offset = 0;

  constructor(private readonly seed: string) {}

  /** A sub-stream, independent of how much of this one has been read. */
  fork(label: string | number): HashStream {
    return new HashStream(sha256Hex(`${this.seed}/${label}`));
  }

  nextUint32(): number {
    if (this.offset + 4 > this.buffer.length) {
      this.buffer = hash("sha256", `${this.seed}:${this.block}`, "buffer");
      this.block += 1;
      this.offset = 0;
    }
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  /** An integer in [min, max], both included. The modulo bias is irrelevant for a simulator. */
  int(min: number, max: number): number {
    if (max <= min) return min;
    return min + (this.nextUint32() % (max - min + 1));
  }

  /** True with probability `p` (0–1). */
  chance(p: number): boolean {
    return this.nextUint32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("HashStream.pick needs a non-empty list");
    return items[this.int(0, items.length - 1)];
  }

  /** `length` lowercase hex digits. */
  hex(length: number): string {
    let out = "";
    while (out.length < length) out += this.nextUint32().toString(16).padStart(8, "0");
    return out.slice(0, length);
  }
}
