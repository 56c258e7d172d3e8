/**
 * A TCP proxy in front of a service (PostgreSQL, Redis) that can go silent: a network partition as
 * real networks make them, where packets are dropped and nothing says so (no RST, no FIN), unlike a
 * service that is down (connection refused) or a backend terminated (an error on the socket).
 *
 * - `partition()`: every socket, open or new, stays open and forwards nothing either way; new
 *   connections are accepted and then hang. What clients write meanwhile is dropped, as a partition
 *   drops it (a buffering proxy would deliver it at heal, which no network does).
 * - `heal()`: forwarding resumes on the connections still open, and new ones go through. Bytes
 *   dropped during the partition are gone, so a connection that wrote meanwhile is usually broken
 *   for its protocol: as after a real partition, where TCP would have given up or reset it.
 * - `reset()`: every open connection is destroyed (a RST), new ones go through.
 */
import net from "node:net";

export interface SilentProxy {
  /** `host:port` to connect to instead of the service's. */
  readonly port: number;
  /** A copy of `url` (postgres://, redis://) pointing at the proxy instead of the service. */
  via(url: string): string;
  partition(): void;
  heal(): void;
  reset(): void;
  /** Connections opened through the proxy so far. */
  readonly connections: number;
  close(): Promise<void>;
}

export async function startSilentProxy(target: { host: string; port: number }): Promise<SilentProxy> {
  let silent = false;
  let opened = 0;
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();

  const server = net.createServer((client) => {
    opened++;
    const upstream = net.connect(target.port, target.host);
    const pair = { client, upstream };
    pairs.add(pair);
    // Each direction forwards only while the network is up; what arrives meanwhile is dropped.
    client.on("data", (chunk) => {
      if (!silent) upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (!silent) client.write(chunk);
    });
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // A side that closes is passed on only while the network is up; a partition hides it too (the
    // other side's socket then stays open until heal(), reset() or close()).
    client.on("close", () => {
      if (!silent) end();
    });
    upstream.on("close", () => {
      if (!silent) end();
    });
    client.on("error", () => undefined);
    upstream.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    via(url) {
      const parsed = new URL(url);
      parsed.hostname = "127.0.0.1";
      parsed.port = String(port);
      return parsed.toString();
    },
    partition() {
      silent = true;
    },
    heal() {
      silent = false;
      // What closed during the partition is passed on now.
      for (const pair of [...pairs]) {
        if (pair.client.destroyed || pair.upstream.destroyed) {
          pairs.delete(pair);
          pair.client.destroy();
          pair.upstream.destroy();
        }
      }
    },
    reset() {
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    get connections() {
      return opened;
    },
    async close() {
      silent = false;
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
