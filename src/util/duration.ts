/**
 * Durations in configuration and directives are written like graphql-rate-limit's windows:
 * "500ms", "30s", "5m", "24h", "1d". One parser serves them all so every setting reads alike.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "30s" into milliseconds; returns undefined for anything that is not a positive duration. */
export function parseDurationMs(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(text);
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2]];
  return Number.isFinite(ms) && ms > 0 ? Math.round(ms) : undefined;
}
