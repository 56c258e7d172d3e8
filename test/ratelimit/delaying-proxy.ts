/**
 * A TCP proxy that delays every byte by a settable latency each way, in order and never losing any,
 * as a slow network or a paused server does (test/helpers/silent-proxy.ts drops them instead, as a
 * partition does). Changing the latency never lets later bytes overtake earlier ones.
 */
import net from "node:net";

export interface DelayingProxy {
  /** A copy of `url` (redis://) pointing at the proxy instead of the service. */
  via(url: string): string;
  /** Latency added to each chunk, each way, from now on. */
  setDelay(ms: number): void;
  close(): Promise<void>;
}

export async function startDelayingProxy(target: { host: string; port: number }): Promise<DelayingProxy> {
  let delayMs = 0;
  const sockets = new Set<net.Socket>();

  /** Forwards `from` to `to`, each chunk when its delay is over, never before the ones sent earlier. */
  function pipeDelayed(from: net.Socket, to: net.Socket): void {
    const queue: { due: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    const drain = () => {
      timer = undefined;
      while (queue.length > 0 && queue[0].due <= Date.now()) {
        const { chunk } = queue.shift()!;
        if (!to.destroyed) to.write(chunk);
      }
      if (queue.length > 0) timer = setTimeout(drain, queue[0].due - Date.now());
    };
    from.on("data", (chunk: Buffer) => {
      queue.push({ due: Date.now() + delayMs, chunk });
      if (!timer) timer = setTimeout(drain, queue[0].due - Date.now());
    });
  }

  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    pipeDelayed(client, upstream);
    pipeDelayed(upstream, client);
    for (const socket of [client, upstream]) {
      socket.on("error", () => undefined);
      socket.on("close", () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(socket);
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    via(url) {
      const parsed = new URL(url);
      parsed.hostname = "127.0.0.1";
      parsed.port = String(port);
      return parsed.toString();
    },
    setDelay(ms) {
      delayMs = ms;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
