/**
 * The console's date helpers (console/src/components/format.ts), run in Node's Intl (full ICU, as a
 * browser's). An outside audit in Chromium with other time zones: the usage window began at midnight
 * UTC, so the first local day the charts listed counted only part of its credits (New York's
 * 1 November showed 3 of 6); and September printed as "Sept" where the docs promise "02 Dec 2026".
 */
import { describe, expect, it } from "vitest";
import { daysAgo, fmtDay, fmtTime } from "../../console/src/components/format.js";

describe("daysAgo: the usage window's start, at the viewer's midnight", () => {
  it.each([
    // 23:50 on 30 Nov in New York (EST), 29 days back: 1 Nov, still on EDT (-4).
    ["America/New_York", "2026-12-01T04:50:00Z", 29, "2026-11-01T04:00:00.000Z"],
    ["UTC", "2026-12-01T04:50:00Z", 29, "2026-11-02T00:00:00.000Z"],
    // 19:00 on 9 Dec at +14: 10 Nov at +14.
    ["Pacific/Kiritimati", "2026-12-09T05:00:00Z", 29, "2026-11-09T10:00:00.000Z"],
    ["Asia/Kathmandu", "2026-12-01T04:50:00Z", 0, "2026-11-30T18:15:00.000Z"],
    ["Pacific/Pago_Pago", "2026-12-01T04:50:00Z", 1, "2026-11-29T11:00:00.000Z"],
    // Lord Howe moves its clocks by 30 minutes (+11 in summer, +10:30 in winter).
    ["Australia/Lord_Howe", "2026-12-01T04:50:00Z", 60, "2026-10-01T13:30:00.000Z"],
  ])("in %s at %s, %i days back: %s", (timeZone, now, days, start) => {
    expect(daysAgo(days as number, timeZone as string, Date.parse(now as string))).toBe(start);
  });

  it("starts a day that has no midnight (Santiago moves 00:00 to 01:00) at its first instant", () => {
    const start = daysAgo(0, "America/Santiago", Date.parse("2026-09-06T12:00:00Z"));
    const format = new Intl.DateTimeFormat("en-CA", { timeZone: "America/Santiago", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", hourCycle: "h23" });
    expect(format.format(Date.parse(start))).toBe("2026-09-06, 01");
    expect(format.format(Date.parse(start) - 1)).toMatch(/^2026-09-05/);
  });
});

describe("the console's day and time formats", () => {
  it("print every month in three letters, September too", () => {
    expect(fmtDay("2026-09-21")).toBe("21 Sep 2026");
    expect(fmtDay("2026-12-02", false)).toBe("02 Dec");
    expect(fmtTime("2026-09-01T12:00:00Z")).toMatch(/^0[12] Sep 2026, \d\d:00:00$/);
  });
});
