/** Runs the real entry point (src/main.ts, as `npm start` does) in a child process on a free port. */
import { spawn, type ChildProcess } from "node:child_process";
import { freePort } from "./closed-port.js";


export interface SpawnedServer {
  child: ChildProcess;
  url: string;
  output(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/**
 * Starts src/main.ts with `env` and waits until it logs that it is listening; through `npm start`
 * itself with `viaNpm` (the child is then npm).
 */
export async function spawnServer(env: Record<string, string>, timeoutMs = 60_000, viaNpm = false): Promise<SpawnedServer> {
  const port = env.PORT ?? String(await freePort());
  const [command, args] = viaNpm ? ["npm", ["start", "--silent"]] : [process.execPath, ["--import", "tsx", "src/main.ts"]];
  const child = spawn(command, args, {
    env: { ...process.env, HOST: "127.0.0.1", LOG_LEVEL: "info", ...env, PORT: port },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  const started = Date.now();
  while (!output.includes("graphql-credits listening")) {
    if (child.exitCode !== null) throw new Error(`server exited early (${child.exitCode}):\n${output}`);
    if (Date.now() - started > timeoutMs) {
      child.kill("SIGKILL");
      throw new Error(`server did not start in ${timeoutMs} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, url: `http://127.0.0.1:${port}`, output: () => output, exited };
}
