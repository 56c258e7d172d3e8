/**
 * `npm run bench`: the price of metering, measured side by side in one run and reported as ratios
 * (absolute numbers drift on a shared machine; ratios of scenarios measured in the same run, in
 * interleaved rounds, hold). See bench/README.md for what each scenario is and the goals.
 *
 * 1. a fresh bench_<random> database on BENCH_DATABASE_URL's server (dropped afterwards);
 * 2. the real server as its own process (production settings; bench/bench-main.ts adds the baseline fields);
 * 3. each scenario warmed up, then `rounds` interleaved rounds of every scenario, medians kept, the
 *    database settled (VACUUM, CHECKPOINT) before each run;
 * 4. a soak of the metered load sampling the server's RSS;
 * 5. the ledger audit and the pending charges checked, results.json and the README table written.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import { SignJWT } from "jose";
import {
  checkIntegrity,
  createBenchDatabase,
  postgresVersion,
  seedBenchData,
  settleDatabase,
  type BenchData,
  type IntegrityReport,
} from "./database.js";
import { httpScenarios, loadScenario, probeScenario, type HttpScenario, type Measurement } from "./http-scenarios.js";
import { BenchUsageError, DEFAULT_OUT, SCENARIO_NAMES, parseBenchOptions, type BenchOptions } from "./options.js";
import { captureDebitStatement, cleanUpRawDebits, loadRawDebit, rawDebitPool, type StatementTemplate } from "./raw-debit.js";
import {
  GOALS,
  computeRatios,
  goalMet,
  median,
  ratioTable,
  scenarioTable,
  soakReport,
  summarise,
  updateReadme,
  writeJson,
  type Run,
  type SoakReport,
} from "./report.js";
import { startBenchServer, type BenchServer, type BenchServerOptions } from "./server.js";
import { startPooledServer } from "./pooled-server.js";
import { cpuPerRequest, sampleCpu, type CpuSample } from "./cpu-usage.js";
import { BENCH_DEBIT_STATEMENT } from "./debit-under-test.js";
import { connectLiveSubscribers } from "./live-subscribers.js";

// Production mode (the bench runs NODE_ENV=production) refuses a JWT_SECRET under 32 characters.
const JWT_SECRET = "bench-secret-of-at-least-32-characters";
const RAW = "raw-debit";
const POOLED = "metered-pooled";
const LIVE = "metered-live";
const RUN_ORDER: readonly string[] = SCENARIO_NAMES;

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

async function mintTokens(owners: string[]): Promise<Map<string, string>> {
  const key = new TextEncoder().encode(JWT_SECRET);
  const tokens = new Map<string, string>();
  for (const owner of owners) {
    tokens.set(owner, await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(owner).setIssuedAt().setExpirationTime("6h").sign(key));
  }
  return tokens;
}

function packageVersion(name: string): string {
  try {
    return JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), "utf8")).version;
  } catch {
    return "unknown";
  }
}

function gitCommit(): string | undefined {
  try {
    const git = (...args: string[]) => execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    // A run of a working tree with changes is not a run of the commit: say so.
    return git("rev-parse", "--short", "HEAD") + (git("status", "--porcelain", "--untracked-files=no") ? "+changes" : "");
  } catch {
    return undefined;
  }
}

interface Scenario {
  name: string;
  description: string;
  /** The server process this scenario loads, when not the main one (its CPU is what is sampled). */
  serverPid?: number;
  measure(seconds: number): Promise<Measurement>;
}

function describeRun(name: string, m: Measurement & { cpuMsPerRequest?: CpuSample }): string {
  const cpu = m.cpuMsPerRequest
    ? `  cpu ms/req: server ${m.cpuMsPerRequest.serverMs.toFixed(3)} pg ${m.cpuMsPerRequest.postgresMs.toFixed(3)} bench ${m.cpuMsPerRequest.benchMs.toFixed(3)}`
    : "";
  const split = m.push?.atOnce && m.push.heldBack ? ` [p99 at once ${m.push.atOnce.p99Ms} ms, held back ${m.push.heldBack.p99Ms} ms (${m.push.heldBack.events})]` : "";
  const push = m.push ? `  push p50 ${m.push.p50Ms} ms p99 ${m.push.p99Ms} ms (${m.push.events} events)${split}, RSS ${m.rssMb?.toFixed(0)} MB` : "";
  return `${name.padEnd(12)} ${m.requestsPerSecond.toFixed(0).padStart(7)} req/s  p50 ${m.p50Ms.toFixed(1).padStart(6)} ms  p99 ${m.p99Ms
    .toFixed(1)
    .padStart(6)} ms  (${m.requests} requests${m.failures ? `, ${m.failures} FAILED` : ""})${cpu}${push}`;
}

async function buildScenarios(
  options: BenchOptions,
  server: BenchServer,
  serverOptions: BenchServerOptions,
  databaseUrl: string,
  data: BenchData,
  tokens: Map<string, string>,
  skipped: Record<string, string>,
  closers: (() => Promise<void>)[],
): Promise<Scenario[]> {
  const scenarios: Scenario[] = [];
  const wanted = (name: string) => !options.only || options.only.includes(name);
  for (const http of httpScenarios(data, tokens)) {
    if (!wanted(http.name)) continue;
    const problem = await probeScenario(server.url, http);
    if (problem) {
      // creditPreview is built elsewhere: until it exists its scenario is reported as skipped.
      if (http.name === "preview" && problem.includes('Cannot query field \\"creditPreview\\"')) {
        skipped[http.name] = `not measured: ${problem}`;
        log(`preview skipped: ${problem}`);
        continue;
      }
      throw new Error(`scenario ${http.name} does not work: ${problem}`);
    }
    scenarios.push({
      name: http.name,
      description: http.description,
      measure: (seconds) => loadScenario(server.url, http as HttpScenario, options.connections, seconds),
    });
  }
  if (wanted(POOLED)) {
    const metered = httpScenarios(data, tokens).find((s) => s.name === "metered") as HttpScenario;
    const pooled = await startPooledServer(serverOptions);
    if ("skipped" in pooled) {
      skipped[POOLED] = `not measured: ${pooled.skipped}`;
      log(`${POOLED} skipped: ${pooled.skipped}`);
    } else {
      closers.push(() => pooled.stop());
      log(`pooled server pid ${pooled.server.pid} at ${pooled.server.url}, through PgBouncer`);
      const problem = await probeScenario(pooled.server.url, metered);
      if (problem) throw new Error(`scenario ${POOLED} does not work: ${problem}`);
      scenarios.push({
        name: POOLED,
        serverPid: pooled.server.pid,
        description: `the metered mutation from a second server reaching the database through PgBouncer (pool_mode = transaction, ${pooled.poolSize} server connections)`,
        measure: (seconds) => loadScenario(pooled.server.url, metered, options.connections, seconds),
      });
    }
  }
  if (wanted(LIVE)) {
    // The metered load itself, whether or not `metered` is measured too (--only metered-live).
    const meteredLoad = httpScenarios(data, tokens).find((s) => s.name === "metered") as HttpScenario;
    scenarios.push({
      name: LIVE,
      description: `the metered mutation with ${data.subscriptions.length} creditBalanceChanged subscribers (graphql-ws) on the subscriptions it charges`,
      async measure(seconds) {
        const live = await connectLiveSubscribers(server.url, data.subscriptions, tokens);
        try {
          live.record();
          const m = await loadScenario(server.url, meteredLoad, options.connections, seconds);
          // Events of the last changes are still on their way: let them arrive before reading the figures.
          await new Promise((resolve) => setTimeout(resolve, 500));
          const push = live.figures();
          const rssMb = server.rssMb();
          // The RSS at the end of the load is where V8's heap saw stood; after full collections, with
          // the subscribers still connected, it is what they and the server really keep.
          const { rssMb: rssCollectedMb } = await server.collectGarbage();
          // A subscriber that lost its subscription makes the run invalid, like a failed request.
          return { ...m, failures: m.failures + push.errors, push, rssMb, rssCollectedMb };
        } finally {
          await live.close();
        }
      },
    });
  }
  if (wanted(RAW)) {
    const template: StatementTemplate = await captureDebitStatement(BENCH_DEBIT_STATEMENT.debit);
    const pool = rawDebitPool(databaseUrl, options.connections);
    closers.push(() => pool.end());
    scenarios.push({
      name: RAW,
      description: `${BENCH_DEBIT_STATEMENT.description}, bare pg pool of ${options.connections}, no server`,
      async measure(seconds) {
        const m = await loadRawDebit(pool, template, data.subscriptions, options.connections, seconds);
        await cleanUpRawDebits(pool);
        return m;
      },
    });
  }
  // Each ratio compares neighbours, so what the machine does meanwhile drifts over both alike.
  return scenarios.sort((a, b) => RUN_ORDER.indexOf(a.name) - RUN_ORDER.indexOf(b.name));
}

/**
 * The soak: `warmupSeconds` of the load first (not counted), full collections in the server and its
 * memory read (BenchServer.collectGarbage), then `seconds` of the load with the RSS sampled every
 * second, then the collections and reading again. The verdict compares the two readings (report.ts,
 * soakReport).
 */
async function soak(server: BenchServer, scenario: Scenario | undefined, seconds: number, warmupSeconds: number): Promise<SoakReport> {
  const run = (s: number) => (scenario ? scenario.measure(s) : new Promise((resolve) => setTimeout(resolve, s * 1000)));
  // Without the load (a run that leaves out `metered`) there is nothing to warm up.
  const warmup = scenario ? warmupSeconds : 0;
  await run(warmup);
  const before = await server.collectGarbage();
  const samples: number[] = [server.rssMb()];
  const timer = setInterval(() => samples.push(server.rssMb()), 1000);
  try {
    await run(seconds);
  } finally {
    clearInterval(timer);
  }
  samples.push(server.rssMb());
  const after = await server.collectGarbage();
  return soakReport(samples, seconds, warmup, [before, after]);
}

async function main(): Promise<number> {
  const options = parseBenchOptions(process.argv.slice(2), process.env);
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  log(`${options.quick ? "quick smoke run" : "full run"}: ${options.connections} connections, ${options.durationSeconds} s × ${options.rounds} rounds`);

  const database = await createBenchDatabase(options.databaseUrl);
  log(`database ${database.name}`);
  let server: BenchServer | undefined;
  const closers: (() => Promise<void>)[] = [];
  const cleanUp = async () => {
    for (const close of closers.splice(0)) await close().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    await database.drop().catch((err) => log(`could not drop ${database.name}: ${err}`));
  };
  const onSignal = () => void cleanUp().finally(() => process.exit(130));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    const serverOptions: BenchServerOptions = {
      databaseUrl: database.url,
      poolSize: options.serverPoolSize,
      jwtSecret: JWT_SECRET,
      profileDir: options.profileDir,
      extraEnv: options.serverEnv,
    };
    server = await startBenchServer(serverOptions);
    log(`server pid ${server.pid} at ${server.url}`);
    const data = await seedBenchData(database.url, options.subscriptions, options.grantsPerBalance);
    const tokens = await mintTokens([...data.subscriptions.map((s) => s.ownerId), data.hot.ownerId]);

    const skipped: Record<string, string> = {};
    const scenarios = await buildScenarios(options, server, serverOptions, database.url, data, tokens, skipped, closers);

    log(`warming up (${options.warmupSeconds} s each)`);
    for (const scenario of scenarios) await scenario.measure(options.warmupSeconds);

    const runs: Run[] = [];
    const settleMs: number[] = [];
    // Interleaved rounds: whatever else the machine does drifts over every scenario alike.
    for (let round = 1; round <= options.rounds; round++) {
      for (const scenario of scenarios) {
        settleMs.push(await settleDatabase(database.url));
        const serverPid = scenario.serverPid ?? server.pid;
        const before = sampleCpu(serverPid, database.name);
        const m = await scenario.measure(options.durationSeconds);
        const cpuMsPerRequest = cpuPerRequest(before, sampleCpu(serverPid, database.name), m.requests);
        runs.push({ scenario: scenario.name, round, ...m, cpuMsPerRequest });
        log(`round ${round}  ${describeRun(scenario.name, { ...m, cpuMsPerRequest })}`);
      }
    }

    log(`database settled before each run in ${Math.round(median(settleMs))} ms (median)`);
    log(`soak: metered load for ${options.soakWarmupSeconds} s, then ${options.soakSeconds} s sampling the server's RSS, a full collection at each end`);
    const soakResult = await soak(server, scenarios.find((s) => s.name === "metered"), options.soakSeconds, options.soakWarmupSeconds);
    const rssMb = soakResult.endMb;

    await server.stop();
    server = undefined;
    for (const close of closers.splice(0)) await close();
    const integrity: IntegrityReport = await checkIntegrity(database.url);
    const pgVersion = await postgresVersion(database.url);

    const descriptions = Object.fromEntries(scenarios.map((s) => [s.name, s.description]));
    const summaries = summarise(runs, descriptions);
    const ratios = computeRatios(summaries, rssMb);
    const goals = Object.fromEntries(
      GOALS.map((g) => [g.key, { op: g.op, target: g.target, value: ratios[g.key], met: goalMet(g, ratios) }]),
    );
    const failures = runs.reduce((n, r) => n + r.failures, 0);
    const finishedAt = new Date();
    const cpus = os.cpus();
    const results = {
      kind: options.quick ? "quick" : "full",
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      commit: gitCommit(),
      machine: {
        platform: `${os.type()} ${os.release()} ${os.arch()}`,
        cpus: cpus.length,
        cpuModel: cpus[0]?.model ?? "unknown",
        memoryMb: Math.round(os.totalmem() / 2 ** 20),
        loadAverageBefore: loadBefore.map((v) => Math.round(v * 100) / 100),
        loadAverageAfter: os.loadavg().map((v) => Math.round(v * 100) / 100),
      },
      versions: {
        node: process.version,
        postgres: pgVersion,
        "@apollo/server": packageVersion("@apollo/server"),
        graphql: packageVersion("graphql"),
        "type-graphql": packageVersion("type-graphql"),
        "drizzle-orm": packageVersion("drizzle-orm"),
        pg: packageVersion("pg"),
        autocannon: packageVersion("autocannon"),
      },
      settings: {
        connections: options.connections,
        durationSeconds: options.durationSeconds,
        warmupSeconds: options.warmupSeconds,
        rounds: options.rounds,
        soakSeconds: options.soakSeconds,
        soakWarmupSeconds: options.soakWarmupSeconds,
        subscriptions: options.subscriptions,
        grantsPerBalance: options.grantsPerBalance,
        serverPoolSize: options.serverPoolSize,
        serverEnv: options.serverEnv,
        rawDebitPoolSize: options.connections,
        settleBeforeEachRun: "vacuum (analyze); checkpoint",
        settleMsMedian: Math.round(median(settleMs)),
      },
      scenarios: summaries,
      skipped,
      runs,
      ratios,
      goals,
      soak: soakResult,
      integrity,
      failures,
    };
    writeJson(options.out, results);
    log(`results written to ${options.out}`);

    const generated = [
      `Run of ${finishedAt.toISOString().slice(0, 16).replace("T", " ")} UTC${results.commit ? ` at ${results.commit}` : ""}: ` +
        `${results.machine.cpus} × ${results.machine.cpuModel}, ${results.machine.memoryMb} MB, Node ${process.version}, PostgreSQL ${pgVersion}; ` +
        `${options.connections} connections, ${options.durationSeconds} s per run, median of ${options.rounds} interleaved rounds, ` +
        `the database settled (VACUUM, CHECKPOINT) before each run; ` +
        `load average ${results.machine.loadAverageBefore[0]} before, ${results.machine.loadAverageAfter[0]} after.`,
      "",
      scenarioTable(summaries),
      "",
      ratioTable(ratios, soakResult, summaries),
      "",
      `Soak (after ${soakResult.warmupSeconds} s of the same load): RSS ${soakResult.startMb.toFixed(0)} → ${soakResult.endMb.toFixed(0)} MB ` +
        `(max ${soakResult.maxMb.toFixed(0)}; floor ${soakResult.floorsMb[0].toFixed(0)} MB in the first half, ${soakResult.floorsMb[1].toFixed(0)} MB in the second); ` +
        `after full collections: RSS ${soakResult.collectedRssMb[0].toFixed(0)} → ${soakResult.collectedRssMb[1].toFixed(0)} MB, ` +
        `V8 heap in use ${soakResult.collectedHeapMb[0].toFixed(1)} → ${soakResult.collectedHeapMb[1].toFixed(1)} MB, ` +
        `memory kept ${soakResult.keptMb[0].toFixed(1)} → ${soakResult.keptMb[1].toFixed(1)} MB. ` +
        `Integrity after the run: ${integrity.auditMismatches} audit mismatches, ${integrity.pendingCharges} charges left pending, ` +
        `${integrity.debits} debits in the ledger.` +
        (Object.keys(skipped).length ? ` Skipped: ${Object.entries(skipped).map(([k, v]) => `${k} (${v})`).join("; ")}.` : ""),
    ].join("\n");
    console.log("\n" + generated + "\n");
    if (options.readme) {
      updateReadme(options.readme, generated);
      log(`table written to ${options.readme}`);
    } else if (options.out.endsWith(DEFAULT_OUT) && !options.quick) {
      log("README not updated");
    }

    const broken = failures > 0 || integrity.auditMismatches > 0 || integrity.pendingCharges > 0;
    if (broken) log(`THE RUN IS NOT VALID: ${failures} failed requests, integrity ${JSON.stringify(integrity)}`);
    return broken ? 1 : 0;
  } finally {
    await cleanUp();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof BenchUsageError ? err.message : err);
    process.exit(err instanceof BenchUsageError ? 2 : 1);
  },
);
