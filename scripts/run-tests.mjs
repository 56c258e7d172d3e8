#!/usr/bin/env node
// `npm test`: runs the whole vitest suite, then prints the closing line CI reads:
//   "N passed, N failed, N skipped"
// vitest prints no such line itself, so it is derived from vitest's JSON reports.
//
// The whole suite runs in three passes:
//   1. every file but the load-sensitive ones, three files at a time. Vitest's default on a two-core
//      machine is one at a time (CPUs - 1), but most files wait on servers, sockets, timers and
//      PostgreSQL rather than compute, so three at a time takes far less wall time (two at a time:
//      833 s for this pass in a fresh-clone CI run, 22 min in all with the passes below);
//   2. the benchmark smoke run by itself (its own server, PgBouncer and a 50-connection pool:
//      beside another file it can meet PostgreSQL's connection limit);
//   3. the console's browser tests, two files at a time with nothing else beside them (a page-load
//      budget): one browser beside another still met the budget (twice, on a loaded machine), and
//      the five files took 150 s instead of about 245 s one at a time.
// With arguments (`npm test -- test/unit/x.test.ts`), they are passed to one vitest run as given.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, existsSync } from "node:fs";

/** Files that run after the rest, by themselves (globs relative to the project), and how many browser files at once. */
const BENCH = "test/bench/**";
const BROWSER = "test/browser/**";
const BROWSER_WORKERS = "2";
/** Files run at once in the first pass; TEST_WORKERS overrides it. */
const WORKERS = process.env.TEST_WORKERS ?? "3";

mkdirSync("test-results", { recursive: true });

/** One vitest run, reported to its own JSON file (so runs side by side do not read each other's). */
function vitest(name, args) {
  const report = `test-results/vitest-${process.pid}-${name}.json`;
  const run = spawnSync(
    process.execPath,
    ["node_modules/vitest/vitest.mjs", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`, ...args],
    { stdio: "inherit" },
  );
  return { report, status: run.status };
}

/** The counts of one run; a run that wrote no report, or failed with nothing failed in it, counts one failure. */
function countsOf({ report, status }) {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  if (!existsSync(report)) return { ...counts, failed: 1 };
  const json = JSON.parse(readFileSync(report, "utf8"));
  counts.passed = json.numPassedTests ?? 0;
  counts.failed = (json.numFailedTests ?? 0) + (json.numRuntimeErrorTestSuites ?? 0);
  counts.skipped = (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0);
  // A file that fails to load has no tests to count; count it as a failure so it cannot pass silently.
  for (const file of json.testResults ?? []) {
    if (file.status === "failed" && (file.assertionResults ?? []).length === 0) counts.failed++;
  }
  if (status !== 0 && counts.failed === 0) counts.failed = 1;
  return counts;
}

const given = process.argv.slice(2);
const runs = given.length > 0
  ? [vitest("given", given)]
  : [
      vitest("shared", [`--maxWorkers=${WORKERS}`, `--exclude=${BENCH}`, `--exclude=${BROWSER}`]),
      vitest("bench", ["--maxWorkers=1", BENCH.replace("/**", "/")]),
      vitest("browser", [`--maxWorkers=${BROWSER_WORKERS}`, BROWSER.replace("/**", "/")]),
    ];

const total = { passed: 0, failed: 0, skipped: 0 };
for (const counts of runs.map(countsOf)) {
  total.passed += counts.passed;
  total.failed += counts.failed;
  total.skipped += counts.skipped;
}
console.log(`${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
process.exit(total.failed > 0 ? 1 : 0);
