/**
 * `npm run token` (src/cli/token.ts) as an operator meets it: `--help` prints the usage with every
 * option and exits 0; an unknown option is one line on stderr and exit 2, never a Node stack; a sub
 * the server would refuse (src/util/text.ts) is refused here too, instead of minting a token that
 * only ever gets 401; and the README names every option the command takes. The audit (REPORT.md,
 * finding 5) found `--help` crashing with ERR_PARSE_ARGS_UNKNOWN_OPTION and `--expires` missing from
 * the README.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createTokenVerifier } from "../../src/auth/verifier.js";

/** Runs the command as `npm run token -- …` does (tsx src/cli/token.ts), in development mode. */
function token(...args: string[]) {
  const env = { ...process.env };
  for (const name of ["JWT_SECRET", "JWT_JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE", "NODE_ENV"]) delete env[name];
  const run = spawnSync(process.execPath, ["--import", "tsx", "src/cli/token.ts", ...args], { encoding: "utf8", env, timeout: 60_000 });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** The long options the usage text lists, e.g. ["--sub", "--admin", "--expires", "--help"]. */
function optionsOf(usage: string): string[] {
  return [...new Set(usage.match(/--[a-z][a-z-]*/g) ?? [])];
}

describe("npm run token", () => {
  it("--help (and -h) prints the usage with every option and exits 0", () => {
    for (const flag of ["--help", "-h"]) {
      const run = token(flag);
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toBe("");
      expect(run.stdout).toMatch(/npm run token -- --sub <user id>/);
      for (const option of ["--sub", "--admin", "--expires", "--help"]) expect(run.stdout).toContain(option);
      expect(run.stdout).not.toMatch(/\bat .*\.(ts|js):\d+/);
    }
  });

  it.each([
    ["an unknown option", ["--bogus"]],
    ["a misspelt option", ["--sub", "u", "--expire", "1h"]],
    ["a stray argument", ["--sub", "u", "extra"]],
    ["--sub without its value", ["--sub"]],
  ])("refuses %s with one line on stderr and exit 2", (_label, args) => {
    const run = token(...args);
    expect(run.status).toBe(2);
    expect(run.stdout).toBe("");
    const lines = run.stderr.trim().split("\n");
    expect(lines, run.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/--help/);
    expect(run.stderr).not.toMatch(/TypeError|ERR_PARSE_ARGS|\bat /);
  });

  it("without --sub: the usage on stderr and exit 2", () => {
    const run = token();
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/--sub/);
  });

  it("refuses a sub the server would refuse, naming the problem", () => {
    for (const sub of ["a\u0001b", "   ", " bob ", "x".repeat(256)]) {
      const run = token("--sub", sub);
      expect(run.status, JSON.stringify(sub)).toBe(2);
      expect(run.stdout).toBe("");
      expect(run.stderr).toMatch(/^--sub /);
    }
  });

  it("mints a token the development server accepts, with --admin and --expires", async () => {
    const run = token("--sub", "cli-user", "--admin", "--expires", "1h");
    expect(run.status, run.stderr).toBe(0);
    const jwt = run.stdout.trim();
    expect(await createTokenVerifier({ cacheSize: 0 })(jwt)).toEqual({ id: "cli-user", isAdmin: true });
    const { exp, iat } = JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString()) as { exp: number; iat: number };
    expect(exp - iat).toBe(3600);
  });

  it("the README names every option the usage lists", () => {
    const usage = token("--help").stdout;
    const options = optionsOf(usage);
    expect(options).toEqual(expect.arrayContaining(["--sub", "--admin", "--expires", "--help"]));
    const readme = readFileSync("README.md", "utf8");
    const mentions = readme.split(/\n\s*\n/).filter((paragraph) => paragraph.includes("npm run token")).join("\n\n");
    for (const option of options) expect(mentions, `README: npm run token ${option}`).toContain(option);
  });
});
