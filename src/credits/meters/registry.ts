/**
 * The meters a @credits(meter: …) directive may name. The directive transformer looks names up here
 * once, at startup, so an unknown name never reaches a request.
 */
import { aiMeter } from "./ai.js";
import { leadsMeter } from "./leads.js";
import type { Meter } from "./meter.js";
import { mlsMeter } from "./mls.js";
import { skipTraceMeter } from "./skiptrace.js";

function byName(meters: readonly Meter[]): ReadonlyMap<string, Meter> {
  const map = new Map<string, Meter>();
  for (const meter of meters) {
    if (map.has(meter.name)) throw new Error(`Two meters are named "${meter.name}"`);
    map.set(meter.name, meter);
  }
  return map;
}

export const METERS: ReadonlyMap<string, Meter> = byName([aiMeter, leadsMeter, mlsMeter, skipTraceMeter]);

/**
 * A meter's raw reading as whole credits (rounded up, never negative). Throws on a reading that is
 * not a usable number, so the caller settles at the hold instead of at garbage.
 */
export function normalizeActual(raw: number): number {
  if (typeof raw !== "number" || !Number.isFinite(raw) || raw < 0) {
    throw new Error(`Meter returned ${String(raw)}, not a finite number of credits`);
  }
  const credits = Math.ceil(raw);
  if (!Number.isSafeInteger(credits)) throw new Error(`Meter returned ${raw}, too large to settle`);
  return credits;
}
