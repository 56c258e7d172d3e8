/**
 * `npm run token -- --expires`: a positive whole number and its unit (s, m, h, d), at most 3650d.
 * An outside audit found `--expires=-5d` printing an already expired token with exit 0, `--expires
 * -5d` failing with Node's "argument is ambiguous", and `100000000d`, `1.5h`, `30D`, `"1 h"` accepted.
 */
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

/** Runs the command as `npm run token -- …` does (tsx src/cli/token.ts), in development mode. */
function token(...args: string[]) {
  const env = { ...process.env };
  for (const name of ["JWT_SECRET", "JWT_JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE", "NODE_ENV"]) delete env[name];
  const run = spawnSync(process.execPath, ["--import", "tsx", "src/cli/token.ts", ...args], { encoding: "utf8", env, timeout: 60_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const lifetime = (jwt: string) => {
  const { exp, iat } = JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()) as { exp: number; iat: number };
  return exp - iat;
};

describe("npm run token --expires", () => {
  it.each([
    [["--expires=-5d"], "-5d"],
    [["--expires", "-5d"], "-5d"],
    [["--expires", "100000000d"], "100000000d"],
    [["--expires", "3651d"], "3651d"],
    [["--expires", "1.5h"], "1.5h"],
    [["--expires", "30D"], "30D"],
    [["--expires", "1 h"], "1 h"],
    [["--expires", "0d"], "0d"],
    [["--expires", "30"], "30"],
    [["--expires", "1w"], "1w"],
    [["--expires="], ""],
  ])("refuses %j with one clear line and exit 2", (args, value) => {
    const run = token("--sub", "u", ...args);
    expect(run.status, run.stdout + run.stderr).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr.trim().split("\n")).toEqual([
      `--expires ${JSON.stringify(value)}: give a positive whole number of seconds, minutes, hours or days (60s, 15m, 12h, 30d), at most 3650d (npm run token -- --help for usage)`,
    ]);
  });

  it.each([
    ["60s", 60],
    ["15m", 900],
    ["12h", 43_200],
    ["3650d", 3650 * 86_400],
  ])("mints a token valid for %s", (expires, seconds) => {
    const run = token("--sub", "u", "--expires", expires);
    expect(run.status, run.stderr).toBe(0);
    expect(lifetime(run.stdout.trim())).toBe(seconds);
  });

  it("defaults to 30d", () => {
    const run = token("--sub", "u");
    expect(run.status, run.stderr).toBe(0);
    expect(lifetime(run.stdout.trim())).toBe(30 * 86_400);
  });
});
