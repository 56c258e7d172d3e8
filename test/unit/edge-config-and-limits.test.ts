/** Issue 15 settings and the request limiter's arithmetic (no server). */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config.js";
import { RequestLimiter } from "../../src/http/request-limit.js";
import { normaliseId, normaliseObject } from "../../src/graphql/normalise-ids.js";
import { findBadText } from "../../src/graphql/validation/nul-characters.js";
import { configProblems } from "../helpers/config-problems.js";


describe("issue 15 configuration", () => {
  it("has the documented defaults", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      CORS_ORIGINS: [],
      REQUEST_LIMIT: { max: 1200, window: "1m", windowMs: 60_000 },
      MAX_DOCUMENT_TOKENS: 10_000,
      devMode: true,
    });
    expect(config.METRICS_TOKEN).toBeUndefined();
  });

  it("reads CORS_ORIGINS as a list or *, and refuses what is not an origin", () => {
    expect(loadConfig({ CORS_ORIGINS: "https://a.example, http://localhost:5173/" }).CORS_ORIGINS).toEqual(["https://a.example", "http://localhost:5173"]);
    expect(loadConfig({ CORS_ORIGINS: "*" }).CORS_ORIGINS).toBe("*");
    expect(configProblems({ CORS_ORIGINS: "a.example" })[0]).toMatch(/^CORS_ORIGINS/);
    expect(configProblems({ REQUEST_LIMIT: "lots" })[0]).toMatch(/^REQUEST_LIMIT: REQUEST_LIMIT must look like/);
  });

  it("refuses production without a secret or with a short one; accepts JWKS or a long secret", () => {
    expect(configProblems({ NODE_ENV: "production" })[0]).toMatch(/JWT_SECRET or JWT_JWKS_URL/);
    expect(configProblems({ NODE_ENV: "production", JWT_SECRET: "x".repeat(31) })[0]).toMatch(/at least 32 characters/);
    expect(loadConfig({ NODE_ENV: "production", JWT_SECRET: "x".repeat(32) }).devMode).toBe(false);
    expect(loadConfig({ NODE_ENV: "production", JWT_JWKS_URL: "https://id.example/.well-known/jwks.json" }).devMode).toBe(false);
    expect(loadConfig({ JWT_SECRET: "short" }).JWT_SECRET).toBe("short"); // outside production: as before
  });
});

describe("RequestLimiter", () => {
  /** The limiter's sub-windows per window: a request counts for between W and W + W/60. */
  const BUCKETS = 60;
  type Spec = { max: number; windowMs: number };
  const seeded = (seed: number) => (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  /** A moment aligned to every window below (a multiple of 10 s, 1 m, 1 s, 7 ms and 1,000 ms), as a wall clock is. */
  const ALIGNED = 1_700_000_040_000 - (1_700_000_040_000 % (60_000 * 7));
  const burst = (limiter: RequestLimiter, caller: string, n: number): number =>
    Array.from({ length: n }, () => limiter.take(caller)).filter((verdict) => verdict.allowed).length;

  it("allows exactly max in a caller's first window, per caller, and says when to retry", () => {
    let now = 120_000;
    const limiter = new RequestLimiter({ max: 3, windowMs: 60_000 }, () => now);
    expect([1, 2, 3].map(() => limiter.take("a").allowed)).toEqual([true, true, true]);
    // The three fell in the 1-second bucket [120 s, 121 s): they count until 121 s + 60 s.
    expect(limiter.take("a")).toEqual({ allowed: false, retryAfterMs: 61_000 });
    expect(limiter.take("b").allowed).toBe(true);
    now += 30_000;
    expect(limiter.take("a")).toEqual({ allowed: false, retryAfterMs: 31_000 });
  });

  it("never admits more than max in a window across a wall-clock window boundary (audit: 31 in 6 s for 20/10s)", () => {
    let now = ALIGNED + 9_760; // 9.76 s into a wall-clock 10 s window
    const limiter = new RequestLimiter({ max: 20, windowMs: 10_000 }, () => now);
    expect(burst(limiter, "a", 20)).toBe(20);
    now = ALIGNED + 15_640; // 5.64 s into the next one: the weighted counter admitted 11 more here
    expect(burst(limiter, "a", 25)).toBe(0);
    // 9,760 ms fell in the bucket [9,666.7, 9,833.3) ms, which counts until 19,833.3 ms.
    expect(limiter.take("a")).toEqual({ allowed: false, retryAfterMs: 19_834 - 15_640 });
  });

  it("gives a caller that waited longer than a window its whole allowance back (audit: 2 of 25 after 10.3 s of 20/10s)", () => {
    let now = ALIGNED + 500;
    const limiter = new RequestLimiter({ max: 20, windowMs: 10_000 }, () => now);
    expect(burst(limiter, "a", 20)).toBe(20);
    now = ALIGNED + 10_800;
    expect(burst(limiter, "a", 25)).toBe(20);
  });

  it("after a burst, waiting W + W/60 gives max again, and a bucket sooner does not", () => {
    const random = seeded(11);
    for (const spec of [{ max: 20, windowMs: 10_000 }, { max: 1_200, windowMs: 60_000 }, { max: 7, windowMs: 1_000 }, { max: 3, windowMs: 7 }]) {
      for (let trial = 0; trial < 50; trial++) {
        let now = ALIGNED + Math.floor(random() * 3 * spec.windowMs);
        const limiter = new RequestLimiter(spec, () => now);
        expect(burst(limiter, "a", spec.max + 5)).toBe(spec.max);
        const burstAt = now;
        now = burstAt + spec.windowMs; // still inside the burst's window (a closed one)
        expect(limiter.take("a").allowed, `${JSON.stringify(spec)} at W`).toBe(false);
        now = burstAt + spec.windowMs + Math.ceil(spec.windowMs / BUCKETS);
        expect(burst(limiter, "a", spec.max + 5), `${JSON.stringify(spec)} trial ${trial}`).toBe(spec.max);
      }
    }
  });

  it("admits a caller that waits exactly its Retry-After, and not a millisecond sooner", () => {
    // Found by an outside audit: with 20/1m, a client that waited the promised time was refused
    // again for 2-3 s. Checked over many traffic shapes: bursts at random moments of the windows.
    const random = seeded(7);
    for (const spec of [{ max: 20, windowMs: 60_000 }, { max: 3, windowMs: 60_000 }, { max: 1, windowMs: 1_000 }, { max: 50, windowMs: 10_000 }, { max: 5, windowMs: 7 }, { max: 9, windowMs: 1_001 }]) {
      for (let trial = 0; trial < 200; trial++) {
        let now = Math.floor(random() * 10 * spec.windowMs);
        const limiter = new RequestLimiter(spec, () => now);
        let refusal: { allowed: false; retryAfterMs: number } | undefined;
        while (refusal === undefined) {
          const verdict = limiter.take("c");
          if (!verdict.allowed) refusal = verdict;
          else now += Math.floor((random() * spec.windowMs) / spec.max / 2); // on average 4 × the allowed rate
        }
        const refusedAt = now;
        if (refusal.retryAfterMs > 1) {
          now = refusedAt + refusal.retryAfterMs - 1;
          expect(limiter.take("c").allowed, `${JSON.stringify(spec)} trial ${trial}: sooner`).toBe(false);
        }
        now = refusedAt + refusal.retryAfterMs;
        expect(limiter.take("c").allowed, `${JSON.stringify(spec)} trial ${trial}: after ${refusal.retryAfterMs} ms`).toBe(true);
      }
    }
  });

  it("holds over random traffic: never more than max in any window of W, and refuses only with max admitted in the last W + W/60", () => {
    const random = seeded(2024);
    const specs: Spec[] = [
      { max: 20, windowMs: 10_000 }, { max: 3, windowMs: 60_000 }, { max: 1, windowMs: 1_000 },
      { max: 50, windowMs: 10_000 }, { max: 7, windowMs: 1_000 }, { max: 5, windowMs: 7 }, { max: 1_200, windowMs: 60_000 },
    ];
    for (const spec of specs) {
      const { max, windowMs: W } = spec;
      const bucketIndex = (t: number): number => Math.floor((t * BUCKETS) / W);
      let refusedInAll = 0;
      let fullWindows = 0;
      for (let trial = 0; trial < 40; trial++) {
        let now = ALIGNED + Math.floor(random() * 2 * W);
        const end = now + 6 * W;
        const limiter = new RequestLimiter(spec, () => now);
        const admitted: number[] = [];
        const refused: number[] = [];
        let retryAt: number | undefined;
        while (now < end) {
          const move = random();
          const edgeSlack = random() < 0.5 ? 1 : 0; // on an edge, or its last millisecond before
          if (move < 0.2) {
            // the same millisecond
          } else if (move < 0.3) now += 1;
          else if (move < 0.45) now = Math.max(now, Math.ceil(((bucketIndex(now) + 1) * W) / BUCKETS) - edgeSlack); // a bucket's edge
          else if (move < 0.55) now = Math.max(now, (Math.floor(now / W) + 1) * W - edgeSlack); // a wall-clock window's edge
          else if (move < 0.65 && retryAt !== undefined) now = Math.max(now, retryAt - edgeSlack);
          else if (move < 0.75) now += W + (random() < 0.5 ? Math.ceil(W / BUCKETS) : 0) - edgeSlack;
          else now += Math.floor((random() * 2 * W) / max);
          const n = random() < 0.1 ? max + 2 : 1 + Math.floor(random() * 3);
          for (let i = 0; i < n; i++) {
            const verdict = limiter.take("a");
            if (verdict.allowed) admitted.push(now);
            else {
              refused.push(now);
              retryAt = now + verdict.retryAfterMs;
            }
          }
        }
        const label = `${max}/${W} ms, trial ${trial}`;
        // Any closed window [t − W, t] (so any half-open one too) holds at most max admitted requests.
        let from = 0;
        for (let to = 0; to < admitted.length; to++) {
          while (admitted[from] < admitted[to] - W) from++;
          if (to - from + 1 > max) expect.fail(`${label}: ${to - from + 1} admitted in [${admitted[to] - W - ALIGNED}, ${admitted[to] - ALIGNED}]`);
          if (to - from + 1 === max) fullWindows++;
        }
        // A refused request at t had max admitted ones in (t − W − W/60, t]: 60 t − 61 W < 60 s.
        let oldest = 0;
        let upTo = 0;
        for (const t of refused) {
          while (upTo < admitted.length && admitted[upTo] <= t) upTo++;
          while (oldest < upTo && BUCKETS * admitted[oldest] <= BUCKETS * t - (BUCKETS + 1) * W) oldest++;
          if (upTo - oldest < max) expect.fail(`${label}: refused at ${t - ALIGNED} with ${upTo - oldest} admitted in the last W + W/60`);
        }
        refusedInAll += refused.length;
      }
      // The traffic did test the limit: windows filled up to max, and requests past them were refused.
      expect(fullWindows, `${max}/${W} ms`).toBeGreaterThan(10);
      expect(refusedInAll, `${max}/${W} ms`).toBeGreaterThan(10);
    }
  });

  it("forgets idle callers, and keeps one whose requests still count", () => {
    let now = 0;
    const limiter = new RequestLimiter({ max: 1_000_000, windowMs: 1_000 }, () => now);
    for (let i = 0; i < 5_000; i++) limiter.take(`caller-${i}`);
    now = 10_000;
    for (let i = 0; i < 10_000; i++) limiter.take("busy");
    expect(limiter.size).toBe(1);

    const held = new RequestLimiter({ max: 2, windowMs: 1_000 }, () => now);
    now = 0;
    for (let i = 0; i < 5_000; i++) held.take(`caller-${i}`);
    now = 9_000;
    expect(burst(held, "held", 2)).toBe(2);
    now = 10_000; // the sweep runs in here: the 5,000 are forgotten, "held" still counts its two
    for (let i = 0; i < 10_000; i++) held.take(`other-${i}`);
    expect(held.size).toBe(10_001);
    expect(held.take("held").allowed).toBe(false);
  });

  it("keeps 60,000 callers in a few tens of MB", () => {
    const now = ALIGNED;
    const before = process.memoryUsage();
    const limiter = new RequestLimiter({ max: 1_200, windowMs: 60_000 }, () => now);
    for (let i = 0; i < 60_000; i++) limiter.take(`ip:10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
    const after = process.memoryUsage();
    const bytesPerCaller = (after.heapUsed - before.heapUsed + after.arrayBuffers - before.arrayBuffers) / 60_000;
    expect(limiter.size).toBe(60_000);
    expect(bytesPerCaller).toBeLessThan(1_000);
  });
});

describe("id normalisation and ill-formed text", () => {
  it("lower-cases upper-case UUIDs only, and copies only what changes", () => {
    expect(normaliseId("7C1E4B5A-0000-4000-8000-00000000000A")).toBe("7c1e4b5a-0000-4000-8000-00000000000a");
    expect(normaliseId("NOT-A-UUID")).toBe("NOT-A-UUID");
    const plan = new Map([["subscriptionId", true as const]]);
    const args = { subscriptionId: "7c1e4b5a-0000-4000-8000-00000000000a", input: { prompt: "X" } };
    expect(normaliseObject(args, plan)).toBe(args);
  });

  it("finds unpaired surrogates in values and keys", () => {
    expect(findBadText({ a: ["ok", "x\ud800"] })).toMatchObject({ where: "variables.a[1]", problem: expect.stringMatching(/well-formed Unicode/) });
    expect(findBadText({ ["k\udc00"]: 1 })?.where).toBe("variables (a key)");
    expect(findBadText({ emoji: "🚀 \ud83d\ude80" })).toBeUndefined();
  });
});
