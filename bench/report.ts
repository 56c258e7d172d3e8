/**
 * Turns the runs into what the bench reports: the median of each scenario, the ratios with their
 * goals, bench/results.json, the console table and the table in bench/README.md.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { CpuSample } from "./cpu-usage.js";
import type { Measurement } from "./http-scenarios.js";

export interface Run extends Measurement {
  scenario: string;
  round: number;
  /** CPU milliseconds per request spent by the server, PostgreSQL and the load generator. */
  cpuMsPerRequest: CpuSample;
}

export interface ScenarioSummary {
  description: string;
  /** Medians over the rounds. */
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Medians over the rounds. */
  cpuMsPerRequest: CpuSample;
  runs: number;
  /** metered-live: medians of the push latencies and of the server's RSS with the subscribers connected. */
  push?: {
    subscribers: number;
    errors: number;
    events: number;
    p50Ms: number;
    p99Ms: number;
    /** Events pushed at once / held back by the push interval (bench/live-subscribers.ts), when measured. */
    atOnce?: { events: number; p99Ms: number };
    heldBack?: { events: number; p99Ms: number };
  };
  rssMb?: number;
  rssCollectedMb?: number;
}

export interface SoakReport {
  seconds: number;
  /** Seconds of the same load before the soak, not counted: the heap, the pools and the JIT settle. */
  warmupSeconds: number;
  /** RSS samples in MB, one a second. */
  samplesMb: number[];
  startMb: number;
  endMb: number;
  maxMb: number;
  /** Lowest sample of the soak's first half and of its second half (shown; the verdict does not read them). */
  floorsMb: [firstHalf: number, secondHalf: number];
  /** RSS right after full collections in the server (BenchServer.collectGarbage), before the soak and after it. */
  collectedRssMb: [before: number, after: number];
  /** V8 heap in use right after those collections. */
  collectedHeapMb: [before: number, after: number];
  /**
   * Memory kept: that RSS less the V8 heap's free space (committed minus in use), which V8 keeps or
   * returns as its young generation grows and shrinks (30 MB either way between two collections).
   */
  keptMb: [before: number, after: number];
  /** Memory kept after the soak minus memory kept before it. */
  growthMb: number;
  growing: boolean;
}

/** The server's memory at one end of the soak, read right after full collections. */
export interface CollectedMemory {
  heapUsedMb: number;
  heapTotalMb: number;
  rssMb: number;
}

export interface Ratios {
  metered_over_bare_sql: number | null;
  metered_hot_over_metered: number | null;
  /** Operations of three metered fields per second over one-field operations per second. */
  metered_three_over_metered: number | null;
  preview_over_noop: number | null;
  metered_pooled_over_metered: number | null;
  p99_metered_over_bare_sql: number | null;
  metered_live_over_metered: number | null;
  live_push_p99_ms: number | null;
  rss_mb: number;
}

export interface Goal {
  key: keyof Ratios;
  label: string;
  /** ">=": the ratio must be at least `target`; "<=": at most. */
  op: ">=" | "<=";
  target: number;
}

export const GOALS: Goal[] = [
  { key: "metered_over_bare_sql", label: "metered / bare-sql (req/s)", op: ">=", target: 0.85 },
  { key: "metered_hot_over_metered", label: "metered-hot / metered (req/s)", op: ">=", target: 0.9 },
  { key: "metered_three_over_metered", label: "metered-three / metered (operations/s)", op: ">=", target: 0.55 },
  { key: "preview_over_noop", label: "preview / noop (req/s)", op: ">=", target: 0.8 },
  { key: "metered_pooled_over_metered", label: "metered through PgBouncer / direct (req/s)", op: ">=", target: 0.8 },
  { key: "p99_metered_over_bare_sql", label: "p99 metered / p99 bare-sql", op: "<=", target: 2 },
  { key: "metered_live_over_metered", label: "metered with 1,000 live subscribers / metered (req/s)", op: ">=", target: 0.9 },
  { key: "live_push_p99_ms", label: "live-balance push p99, commit to client (ms)", op: "<=", target: 100 },
  { key: "rss_mb", label: "server RSS after the run (MB)", op: "<=", target: 300 },
];

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function summarise(runs: Run[], descriptions: Record<string, string>): Record<string, ScenarioSummary> {
  const byScenario: Record<string, ScenarioSummary> = {};
  for (const name of [...new Set(runs.map((r) => r.scenario))]) {
    const mine = runs.filter((r) => r.scenario === name);
    byScenario[name] = {
      description: descriptions[name] ?? name,
      requestsPerSecond: median(mine.map((r) => r.requestsPerSecond)),
      p50Ms: median(mine.map((r) => r.p50Ms)),
      p99Ms: median(mine.map((r) => r.p99Ms)),
      cpuMsPerRequest: {
        serverMs: median(mine.map((r) => r.cpuMsPerRequest.serverMs)),
        postgresMs: median(mine.map((r) => r.cpuMsPerRequest.postgresMs)),
        benchMs: median(mine.map((r) => r.cpuMsPerRequest.benchMs)),
      },
      runs: mine.length,
    };
    const pushes = mine.map((r) => r.push).filter((p) => p !== undefined);
    if (pushes.length > 0) {
      byScenario[name].push = {
        subscribers: pushes[0].subscribers,
        errors: Math.max(...pushes.map((p) => p.errors)),
        events: median(pushes.map((p) => p.events)),
        p50Ms: median(pushes.map((p) => p.p50Ms)),
        p99Ms: median(pushes.map((p) => p.p99Ms)),
        ...splitMedians(pushes),
      };
      byScenario[name].rssMb = median(mine.map((r) => r.rssMb ?? 0));
      byScenario[name].rssCollectedMb = median(mine.map((r) => r.rssCollectedMb ?? 0));
    }
  }
  return byScenario;
}

function ratio(a: number | undefined, b: number | undefined): number | null {
  return a === undefined || b === undefined || b === 0 ? null : a / b;
}

export function computeRatios(s: Record<string, ScenarioSummary>, rssMb: number): Ratios {
  return {
    metered_over_bare_sql: ratio(s.metered?.requestsPerSecond, s["bare-sql"]?.requestsPerSecond),
    metered_hot_over_metered: ratio(s["metered-hot"]?.requestsPerSecond, s.metered?.requestsPerSecond),
    metered_three_over_metered: ratio(s["metered-three"]?.requestsPerSecond, s.metered?.requestsPerSecond),
    preview_over_noop: ratio(s.preview?.requestsPerSecond, s.noop?.requestsPerSecond),
    metered_pooled_over_metered: ratio(s["metered-pooled"]?.requestsPerSecond, s.metered?.requestsPerSecond),
    p99_metered_over_bare_sql: ratio(s.metered?.p99Ms, s["bare-sql"]?.p99Ms),
    metered_live_over_metered: ratio(s["metered-live"]?.requestsPerSecond, s.metered?.requestsPerSecond),
    live_push_p99_ms: s["metered-live"]?.push?.p99Ms ?? null,
    rss_mb: Math.round(rssMb * 10) / 10,
  };
}

export function goalMet(goal: Goal, ratios: Ratios): boolean | null {
  const value = ratios[goal.key];
  if (value === null) return null;
  return goal.op === ">=" ? value >= goal.target : value <= goal.target;
}

/**
 * Whether the server's memory grows under steady load. A V8 process's RSS saws: it climbs for tens of
 * seconds as the heap fills, then drops at a full collection, so comparing the first and last
 * samples (or their means) says where the saw happened to be, not whether memory is kept: runs of
 * the same code measured −54, −27 and +51 MB that way. What a leak raises is what survives a
 * collection. The lowest sample of each half of the soak stood for that until it proved too coarse:
 * a half holds a few collections, and what RSS is left after one depends on what was in flight then
 * and on how much young generation V8 keeps committed, so one code's floors wandered by 20 MB and
 * more (214 to 238 MB between 20 s stretches of a 180 s soak; 187 → 224 MB from one half to the other
 * while its heap after a full collection went 36.2 → 36.0 MB). So the server collects its garbage
 * fully at both ends of the soak (after a warm-up of the same load) and the memory it keeps is read
 * then: its RSS less the V8 heap's free space. Growth is the second reading minus the first. A leak
 * of JavaScript objects (maps, arrays, listeners, caches) shows as heap in use, one of native memory
 * (buffers, the allocator) as RSS outside the heap: both are in it. The floors are still reported.
 */
export function soakReport(samplesMb: number[], seconds: number, warmupSeconds: number, collected: [CollectedMemory, CollectedMemory]): SoakReport {
  const half = Math.max(1, Math.floor(samplesMb.length / 2));
  const firstFloor = Math.min(...samplesMb.slice(0, half));
  const secondFloor = samplesMb.length > 1 ? Math.min(...samplesMb.slice(half)) : firstFloor;
  const kept = collected.map((c) => c.rssMb - (c.heapTotalMb - c.heapUsedMb)) as [number, number];
  const growthMb = kept[1] - kept[0];
  const round = (v: number) => Math.round(v * 10) / 10;
  return {
    seconds,
    warmupSeconds,
    samplesMb: samplesMb.map(round),
    startMb: samplesMb[0] ?? 0,
    endMb: samplesMb.at(-1) ?? 0,
    maxMb: Math.max(...samplesMb),
    floorsMb: [round(firstFloor), round(secondFloor)],
    collectedRssMb: [round(collected[0].rssMb), round(collected[1].rssMb)],
    collectedHeapMb: [round(collected[0].heapUsedMb), round(collected[1].heapUsedMb)],
    keptMb: [round(kept[0]), round(kept[1])],
    growthMb: round(growthMb),
    // A few MB either way between readings is the allocator; a leak under this load keeps adding.
    growing: growthMb > Math.max(10, kept[0] * 0.05),
  };
}

const fmt = (n: number | null | undefined, digits = 2) => (n === null || n === undefined ? "–" : n.toFixed(digits));

export function scenarioTable(summaries: Record<string, ScenarioSummary>): string {
  const lines = [
    "| scenario | req/s | p50 ms | p99 ms | CPU ms/req: server | PostgreSQL | load generator | what it does |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
  ];
  for (const [name, s] of Object.entries(summaries)) {
    const cpu = s.cpuMsPerRequest;
    lines.push(
      `| ${name} | ${Math.round(s.requestsPerSecond)} | ${fmt(s.p50Ms, 1)} | ${fmt(s.p99Ms, 1)} | ` +
        `${name === "raw-debit" ? "–" : fmt(cpu.serverMs, 3)} | ${fmt(cpu.postgresMs, 3)} | ${fmt(cpu.benchMs, 3)} | ${s.description} |`,
    );
  }
  return lines.join("\n");
}

export function ratioTable(ratios: Ratios, soak: SoakReport | undefined, summaries: Record<string, ScenarioSummary> = {}): string {
  const lines = ["| ratio | measured | goal | met |", "| --- | ---: | ---: | --- |"];
  for (const goal of GOALS) {
    const met = goalMet(goal, ratios);
    const digits = goal.key === "rss_mb" || goal.key === "live_push_p99_ms" ? 0 : 2;
    lines.push(`| ${goal.label} | ${fmt(ratios[goal.key], digits)} | ${goal.op} ${goal.target} | ${met === null ? "not measured" : met ? "yes" : "**no**"} |`);
  }
  if (summaries["metered-live"]?.rssMb !== undefined) {
    const live = summaries["metered-live"];
    lines.push(
      `| server RSS with ${live.push?.subscribers} live subscribers (MB): at the end of the load; after full collections; push p50 (ms) | ${fmt(live.rssMb, 0)}; ${fmt(live.rssCollectedMb, 0)}; ${fmt(live.push?.p50Ms, 0)} | reported | – |`,
    );
    const { atOnce, heldBack } = live.push ?? {};
    if (atOnce && heldBack) {
      lines.push(
        `| push p99 of events sent at once (${fmt(atOnce.events, 0)}) / held back by the 100 ms push interval (${fmt(heldBack.events, 0)}) (ms) | ${fmt(atOnce.p99Ms, 0)} / ${fmt(heldBack.p99Ms, 0)} | reported | – |`,
      );
    }
  }
  if (soak) {
    lines.push(
      `| memory kept (RSS after a full collection, less the V8 heap's free space): growth over a ${soak.seconds} s soak (MB) | ${fmt(soak.growthMb, 1)} | not growing | ${soak.growing ? "**no**" : "yes"} |`,
    );
  }
  return lines.join("\n");
}

/** Medians of the at-once / held-back split over the rounds that measured it. */
function splitMedians(pushes: NonNullable<ScenarioSummary["push"]>[]): Pick<NonNullable<ScenarioSummary["push"]>, "atOnce" | "heldBack"> {
  const measured = pushes.filter((p) => p.atOnce && p.heldBack);
  if (measured.length === 0) return {};
  const part = (pick: (p: (typeof measured)[number]) => { events: number; p99Ms: number }) => ({
    events: median(measured.map((p) => pick(p).events)),
    p99Ms: median(measured.map((p) => pick(p).p99Ms)),
  });
  return { atOnce: part((p) => p.atOnce!), heldBack: part((p) => p.heldBack!) };
}

export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(value, null, 2) + "\n");
}

export const README_START = "<!-- bench:results:start -->";
export const README_END = "<!-- bench:results:end -->";

/** Replaces the generated part of the README (between the markers), keeping the hand-written text. */
export function updateReadme(path: string, generated: string): void {
  if (!existsSync(path)) {
    writeFileSync(path, `# Benchmark results\n\n${README_START}\n${generated.trim()}\n${README_END}\n`);
    return;
  }
  const current = readFileSync(path, "utf8");
  const start = current.indexOf(README_START);
  const end = current.indexOf(README_END);
  if (start < 0 || end < start) throw new Error(`${path} has no ${README_START} … ${README_END} section`);
  const next = current.slice(0, start + README_START.length) + "\n" + generated.trim() + "\n" + current.slice(end);
  writeFileSync(path, next);
}
