/**
 * `npm run token -- --sub <id> [--admin] [--expires 30d]`: prints a token for development mode
 * (or for JWT_SECRET when it is set, so a deployment's operator can mint a test token, signed with
 * JWT_ISSUER and JWT_AUDIENCE when those are set too). `--help` prints the usage; a mistake in the
 * arguments is one line on stderr and exit code 2, never a stack.
 */
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../config/config.js";
import { mintToken } from "../auth/mint.js";
import { userIdProblem } from "../util/text.js";

const USAGE = `usage: npm run token -- --sub <user id> [--admin] [--expires 30d]

Prints a signed token (HS256) for the server's development secret, or for JWT_SECRET when it is set
(with JWT_ISSUER and JWT_AUDIENCE when those are set).

Options:
  --sub <user id>    the token's subject: the user id (required)
  --admin            make the token an admin's (app_metadata.role: "admin")
  --expires <time>   how long the token is valid: a whole number of days, hours, minutes or
                     seconds, such as 30d (the default), 12h, 15m or 60s; at most 3650d
  -h, --help         print this help and exit`;

/** One line on stderr and exit code 2: how a command says its arguments were wrong. */
function refuse(message: string): never {
  console.error(`${message} (npm run token -- --help for usage)`);
  process.exit(2);
}

/** --expires: a positive whole number and its unit, at most ten years (jose would also take "1.5h", "30D", "1 h" or "-5d"). */
const EXPIRES_FORM = /^[1-9]\d*[smhd]$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3_600, d: 86_400 };
const MAX_EXPIRES_DAYS = 3650;

/** The problem with an --expires value, or undefined when it is one. */
function expiresProblem(text: string): string | undefined {
  const fits = EXPIRES_FORM.test(text) && Number(text.slice(0, -1)) * UNIT_SECONDS[text.slice(-1)] <= MAX_EXPIRES_DAYS * UNIT_SECONDS.d;
  return fits
    ? undefined
    : `--expires ${JSON.stringify(text)}: give a positive whole number of seconds, minutes, hours or days (60s, 15m, 12h, 30d), at most ${MAX_EXPIRES_DAYS}d`;
}

/**
 * `--expires -5d` as `--expires=-5d`: parseArgs takes a value starting with a dash for an option and
 * answers "argument is ambiguous"; joined, the value reaches expiresProblem and its clear message.
 */
function joinDashedExpires(args: readonly string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--expires" && /^-[\d.]/.test(args[i + 1] ?? "")) joined.push(`--expires=${args[++i]}`);
    else joined.push(args[i]);
  }
  return joined;
}

let values: { sub?: string; admin: boolean; expires: string; help: boolean };
try {
  ({ values } = parseArgs({
    args: joinDashedExpires(process.argv.slice(2)),
    options: {
      sub: { type: "string" },
      admin: { type: "boolean", default: false },
      expires: { type: "string", default: "30d" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  // parseArgs' message is already one line ("Unknown option '--bogus'"); its stack is for no one.
  refuse(err instanceof Error ? err.message.split("\n")[0]! : String(err));
}

if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
if (values.sub === undefined) {
  console.error(USAGE);
  process.exit(2);
}
// The server's own rule for a user id (the token's sub): a token it would refuse is not minted.
const problem = userIdProblem(values.sub);
if (problem) refuse(`--sub ${problem}`);
const expiresRefusal = expiresProblem(values.expires);
if (expiresRefusal) refuse(expiresRefusal);

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) refuse(`Invalid configuration: ${err.problems.join("; ")}`);
  throw err;
}
if (config.JWT_JWKS_URL && !config.JWT_SECRET) {
  console.error("JWT_JWKS_URL is set: tokens come from your identity provider, not from this command.");
  process.exit(2);
}
// --expires is checked above: jose reads every time it is given.
const token = await mintToken({
  sub: values.sub,
  admin: values.admin,
  secret: config.JWT_SECRET,
  expiresIn: values.expires,
  issuer: config.JWT_ISSUER,
  audience: config.JWT_AUDIENCE,
});
console.log(token);
