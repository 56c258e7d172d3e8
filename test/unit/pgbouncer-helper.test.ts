/** The PgBouncer test helper: a missing pgbouncer skips its tests, or fails the run under REQUIRE_SERVICES=1. */
import { describe, expect, it, vi } from "vitest";
import { requirePgBouncer } from "../helpers/pgbouncer.js";

describe("pgbouncer detection for the test suite", () => {
  it("missing: undefined with a warning, or an error naming the package under REQUIRE_SERVICES=1", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    expect(requirePgBouncer(false, () => undefined)).toBeUndefined();
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/pgbouncer is not installed.*skipped/));
    warn.mockRestore();
    expect(() => requirePgBouncer(true, () => undefined)).toThrow(/REQUIRE_SERVICES=1.*apt-get install -y pgbouncer/);
  });

  it("installed: its path", () => {
    expect(requirePgBouncer(true, () => "/usr/sbin/pgbouncer")).toBe("/usr/sbin/pgbouncer");
  });
});
