import { describe, expect, it, vi } from "vitest";
import { chromiumAvailable, CHROMIUM_PATH } from "../helpers/browser.js";

describe("chromium detection for the browser tests", () => {
  it("a missing chromium is skipped with a message normally, and fails the run under REQUIRE_SERVICES=1", () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    expect(chromiumAvailable(false, "/nonexistent/chromium")).toBe(false);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining("the browser tests are skipped"));
    warn.mockRestore();
    expect(() => chromiumAvailable(true, "/nonexistent/chromium")).toThrow(/REQUIRE_SERVICES=1 requires it/);
  });

  it("finds an installed one", () => {
    expect(chromiumAvailable(true, process.execPath)).toBe(true);
    expect(CHROMIUM_PATH).toBe(process.env.TEST_CHROMIUM_PATH ?? "/usr/bin/chromium");
  });
});
