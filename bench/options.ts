/**
 * Command-line options of `npm run bench`. The full run is what bench/README.md reports; --quick is a
 * smoke test (CI runs it through test/bench/bench-quick.test.ts) whose numbers mean nothing.
 */
import { resolve } from "node:path";

export interface BenchOptions {
  /** Each scenario once for a few seconds, a short soak: proves the bench works, measures nothing. */
  quick: boolean;
  /** Where results.json goes. */
  out: string;
  /** Where the results table is written (between markers); undefined: nowhere. */
  readme: string | undefined;
  /** PostgreSQL server to create the bench database on. */
  databaseUrl: string;
  /** Run the server with --cpu-prof, writing .cpuprofile files into this directory. */
  profileDir: string | undefined;
  /** Only these scenarios (default: all). */
  only: string[] | undefined;
  connections: number;
  durationSeconds: number;
  warmupSeconds: number;
  rounds: number;
  soakSeconds: number;
  /** Seconds of the soak's load before it is measured (not counted), so what it compares has settled. */
  soakWarmupSeconds: number;
  subscriptions: number;
  /** Grants each balance is seeded with (--grants-per-balance): mixed categories, priorities and expiries. */
  grantsPerBalance: number;
  serverPoolSize: number;
  /** Extra server settings: every BENCH_SERVER_<NAME>=value becomes <NAME>=value in the server's environment. */
  serverEnv: Record<string, string>;
}

/** Every scenario, in the order a round runs them (neighbours are compared, so they run side by side). */
export const SCENARIO_NAMES = ["bare-sql", "metered", "metered-three", "metered-live", "metered-hot", "metered-pooled", "noop", "preview", "raw-debit"] as const;

export const DEFAULT_OUT = "bench/results.json";
export const DEFAULT_README = "bench/README.md";

/** A bad command line: shown as its message alone, without a stack. */
export class BenchUsageError extends Error {
  override name = "BenchUsageError";
}

const USAGE = `npm run bench -- [--quick] [--out file] [--readme file] [--profile dir] [--only a,b] [--duration s] [--rounds n] [--soak s]
                     [--grants-per-balance n]   seed every balance with n grants (default 1), e.g. 5
  BENCH_DATABASE_URL  PostgreSQL server to create a fresh bench_<random> database on
                      (default postgres://postgres@127.0.0.1:5432/test)
  BENCH_SERVER_<NAME> passed to the server as <NAME>, e.g. BENCH_SERVER_CHARGE_BATCH_IN_FLIGHT=1`;

/** --only's scenarios; an unknown name is refused rather than silently measuring nothing. */
function onlyScenarios(list: string | undefined): string[] | undefined {
  if (list === undefined) return undefined;
  const names = list.split(",").map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((name) => !(SCENARIO_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0 || names.length === 0) {
    throw new BenchUsageError(`--only takes scenario names, comma-separated: ${SCENARIO_NAMES.join(", ")}${unknown.length ? ` (not known: ${unknown.join(", ")})` : ""}\n${USAGE}`);
  }
  return names;
}

export function parseBenchOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new BenchUsageError(`unexpected argument ${arg}\n${USAGE}`);
    const [name, inline] = arg.slice(2).split("=", 2);
    if (inline !== undefined) flags.set(name, inline);
    else if (["quick", "help"].includes(name)) flags.set(name, true);
    else if (i + 1 < argv.length) flags.set(name, argv[++i]);
    else throw new BenchUsageError(`--${name} needs a value\n${USAGE}`);
  }
  const known = new Set(["quick", "help", "out", "readme", "profile", "only", "duration", "rounds", "soak", "connections", "grants-per-balance"]);
  for (const name of flags.keys()) if (!known.has(name)) throw new BenchUsageError(`unknown option --${name}\n${USAGE}`);
  if (flags.has("help")) {
    console.log(USAGE);
    process.exit(0);
  }
  const text = (name: string) => {
    const value = flags.get(name);
    return typeof value === "string" ? value : undefined;
  };
  const number = (name: string, fallback: number) => {
    const value = text(name);
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new BenchUsageError(`--${name} must be a positive number\n${USAGE}`);
    return n;
  };

  const quick = flags.get("quick") === true;
  const out = resolve(text("out") ?? DEFAULT_OUT);
  // The committed README shows the committed results: it is rewritten only by a run that writes
  // the default results file, or when asked for explicitly.
  const readmeFlag = text("readme");
  const readme = readmeFlag ? resolve(readmeFlag) : text("out") === undefined && !quick ? resolve(DEFAULT_README) : undefined;
  return {
    quick,
    out,
    readme,
    databaseUrl: env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test",
    profileDir: text("profile") ? resolve(text("profile") as string) : undefined,
    only: onlyScenarios(text("only")),
    connections: number("connections", 50),
    durationSeconds: number("duration", quick ? 3 : 10),
    warmupSeconds: quick ? 1 : 3,
    rounds: number("rounds", quick ? 1 : 3),
    soakSeconds: number("soak", quick ? 4 : 60),
    soakWarmupSeconds: quick ? 1 : 10,
    subscriptions: 1000,
    grantsPerBalance: Math.round(number("grants-per-balance", 1)),
    serverPoolSize: 20,
    serverEnv: Object.fromEntries(
      Object.entries(env)
        .filter(([name, value]) => name.startsWith("BENCH_SERVER_") && value !== undefined)
        .map(([name, value]) => [name.slice("BENCH_SERVER_".length), value as string]),
    ),
  };
}
