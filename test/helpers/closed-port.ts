/** A TCP port on 127.0.0.1 that nothing listens on (bound, then closed): for "service is down" tests. */
import net from "node:net";

export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The same port, read as "free to listen on": for servers a test or the benchmark starts itself. */
export const freePort = closedPort;
