import net from "node:net";
import { describe, expect, it } from "vitest";
import { serviceAvailable } from "../helpers/services.js";
import { closedPort } from "../helpers/closed-port.js";


describe("service detection for the test suite", () => {
  it("a missing service is skipped normally but fails the run under REQUIRE_SERVICES=1", async () => {
    const url = `postgres://postgres@127.0.0.1:${await closedPort()}/test`;
    expect(await serviceAvailable("PostgreSQL", url, 5432, false)).toBe(false);
    await expect(serviceAvailable("PostgreSQL", url, 5432, true)).rejects.toThrow(/required \(REQUIRE_SERVICES=1\)/);
  });

  it("a listening service is available", async () => {
    const server = net.createServer((s) => s.end());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as net.AddressInfo;
    expect(await serviceAvailable("Redis", `redis://127.0.0.1:${port}`, 6379, true)).toBe(true);
    await new Promise((resolve) => server.close(resolve));
  });
});
