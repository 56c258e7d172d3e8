/**
 * Which outside services the tests can reach. Tests that need PostgreSQL or Redis use
 * TEST_DATABASE_URL / TEST_REDIS_URL, or the local defaults when they answer. When a service is
 * missing those tests are skipped with a message, unless REQUIRE_SERVICES=1 (CI), which turns the
 * skip into a failure.
 */
import net from "node:net";

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const REQUIRE_SERVICES = process.env.REQUIRE_SERVICES === "1";

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const parsed = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: parsed.hostname, port: Number(parsed.port || defaultPort) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** True when the service answers; false (with a warning) when not; throws instead when `required`. */
export async function serviceAvailable(name: string, url: string, port: number, required = REQUIRE_SERVICES): Promise<boolean> {
  const ok = await reachable(url, port);
  if (!ok && required) {
    throw new Error(`${name} is required (REQUIRE_SERVICES=1) but ${url} does not answer`);
  }
  if (!ok) console.warn(`[tests] ${name} at ${url} does not answer: its tests are skipped`);
  return ok;
}

export const postgresAvailable = await serviceAvailable("PostgreSQL", TEST_DATABASE_URL, 5432);
export const redisAvailable = await serviceAvailable("Redis", TEST_REDIS_URL, 6379);
