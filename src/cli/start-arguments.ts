/**
 * `npm start` is configured by environment variables only. It took any argument silently and
 * started (an outside audit: `npm start -- --help` ran a server until killed), so a flag a user
 * expected to work (`--port 5000`) was ignored without a word. Now `--help` prints how it is
 * configured, and anything else is refused before anything starts.
 */
export const START_USAGE = `Usage: [VARIABLE=value …] npm start

Starts the graphql-credits server (and its console). It takes no arguments: it is configured by
environment variables, e.g. PORT=5000 DATABASE_URL=postgres://… npm start. Without DATABASE_URL it
runs on the embedded PGlite database in ./.data/pglite. Every variable is listed in the README
("Configuration").`;

export type StartArguments = { run: true } | { run: false; exitCode: 0 | 2; output: string };

export function readStartArguments(argv: readonly string[]): StartArguments {
  if (argv.length === 0) return { run: true };
  if (argv.length === 1 && (argv[0] === "--help" || argv[0] === "-h")) return { run: false, exitCode: 0, output: START_USAGE };
  return {
    run: false,
    exitCode: 2,
    output: `npm start takes no arguments (got ${argv.map((a) => JSON.stringify(a)).join(" ")}): set environment variables instead.\n\n${START_USAGE}`,
  };
}
