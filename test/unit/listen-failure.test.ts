/**
 * What `npm start` says when it cannot listen (src/config/listen-failure.ts): one line naming the
 * variable to fix. test/e2e/server-start.test.ts runs one such start (a port in use) end to end.
 */
import { describe, expect, it } from "vitest";
import { listenFailure } from "../../src/config/listen-failure.js";

const at = { port: 4000, host: "0.0.0.0" };
const error = (code: string, message = code) => Object.assign(new Error(message), { code });

describe("listenFailure", () => {
  it("names PORT for a port in use or one that needs privileges", () => {
    expect(listenFailure(at, error("EADDRINUSE"))).toEqual({
      variable: "PORT",
      cause: "already in use",
      message: "PORT: 4000 is already in use on 0.0.0.0: stop what listens there, or choose another port",
    });
    expect(listenFailure({ port: 80, host: "0.0.0.0" }, error("EACCES"))).toMatchObject({ variable: "PORT", cause: "permission denied", message: expect.stringContaining("ports below 1024") });
  });

  it("names HOST for a name that does not resolve and an address that is not this machine's", () => {
    for (const code of ["ENOTFOUND", "EAI_AGAIN", "EAI_NONAME"]) {
      expect(listenFailure({ port: 4000, host: "host.invalid" }, error(code))).toEqual({
        variable: "HOST",
        cause: "host not found",
        message: 'HOST: "host.invalid" is not an address or a host name this machine can resolve',
      });
    }
    expect(listenFailure({ port: 4000, host: "10.255.255.1" }, error("EADDRNOTAVAIL"))).toMatchObject({
      variable: "HOST",
      message: "HOST: 10.255.255.1 is not an address of this machine: use 0.0.0.0 (every interface) or one of its addresses",
    });
  });

  it("says anything else in the first line of its message, naming both", () => {
    expect(listenFailure(at, error("EWHATEVER", "something odd\n    at stack"))).toEqual({
      variable: "PORT",
      cause: "something odd",
      message: "PORT/HOST: cannot listen on 0.0.0.0:4000 (something odd)",
    });
    expect(listenFailure(at, "not an error").cause).toBe("not an error");
  });
});
