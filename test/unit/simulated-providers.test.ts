import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { BadUserInputError, isUserInputError } from "../../src/errors/errors.js";
import type { ProviderCallOptions } from "../../src/providers/providers.js";
import { canonicalJson, HashStream, seedOf } from "../../src/providers/simulated/hash.js";
import { SimulatedProviders } from "../../src/providers/simulated/simulated-providers.js";

const providers = new SimulatedProviders();
const none: ProviderCallOptions = {};
const record = { firstName: "Ada", lastName: "Lovelace", address: "1 Main St", city: "London" };

describe("hash helpers", () => {
  it("serialise objects independently of key order", () => {
    expect(canonicalJson({ b: 1, a: [1, { d: 2, c: 3 }] })).toBe(canonicalJson({ a: [1, { c: 3, d: 2 }], b: 1 }));
    expect(seedOf("x", { a: 1, b: 2 })).toBe(seedOf("x", { b: 2, a: 1 }));
    expect(seedOf("x", { a: 1 })).not.toBe(seedOf("y", { a: 1 }));
  });

  it("stream the same numbers from the same seed, within bounds", () => {
    const a = new HashStream("seed");
    const b = new HashStream("seed");
    const values = Array.from({ length: 50 }, () => a.int(3, 7));
    expect(values).toEqual(Array.from({ length: 50 }, () => b.int(3, 7)));
    expect(values.every((v: number) => v >= 3 && v <= 7)).toBe(true);
    expect(new Set(values).size).toBeGreaterThan(1);
    expect(new HashStream("seed").hex(12)).toMatch(/^[0-9a-f]{12}$/);
  });

  it("read SHA-256 digests as documented, so a simulated answer never changes between versions", () => {
    const sha256 = (text: string) => createHash("sha256").update(text);
    expect(seedOf("Mutation.searchLeads", { limit: 4, query: "bench 4" })).toBe(
      sha256('Mutation.searchLeads\n{"limit":4,"query":"bench 4"}').digest("hex"),
    );
    // Block n of a stream is sha256(seed ":" n), read as big-endian 32-bit words; a fork's seed is sha256(seed "/" label).
    const stream = new HashStream("seed");
    const words = (digest: Buffer) => Array.from({ length: 8 }, (_, i) => digest.readUInt32BE(i * 4));
    expect(Array.from({ length: 16 }, () => stream.nextUint32())).toEqual([
      ...words(sha256("seed:0").digest()),
      ...words(sha256("seed:1").digest()),
    ]);
    expect(new HashStream("seed").fork("found").nextUint32()).toBe(sha256(`${sha256("seed/found").digest("hex")}:0`).digest().readUInt32BE(0));
  });
});

describe("SimulatedProviders: determinism", () => {
  it("answers the same request the same way, every operation", async () => {
    const fresh = new SimulatedProviders();
    const calls: [() => Promise<unknown>, () => Promise<unknown>][] = [
      [
        () => providers.runAiTask({ prompt: "Write a haiku", model: "SMALL", maxTokens: 256 }, none),
        () => fresh.runAiTask({ prompt: "Write a haiku", model: "SMALL", maxTokens: 256 }, none),
      ],
      [
        () => providers.searchLeads({ query: "plumbers", location: "Austin", limit: 10 }, none),
        () => fresh.searchLeads({ limit: 10, location: "Austin", query: "plumbers" }, none),
      ],
      [
        () => providers.searchMls({ area: "Austin", limit: 5, includeHistory: true }, none),
        () => fresh.searchMls({ area: "Austin", limit: 5, includeHistory: true }, none),
      ],
      [
        () => providers.harvestDomain({ domain: "example.com", sources: ["bing", "otx"], limit: 50 }, none),
        () => fresh.harvestDomain({ domain: "example.com", sources: ["bing", "otx"], limit: 50 }, none),
      ],
      [() => providers.skipTrace({ records: [record] }, none), () => fresh.skipTrace({ records: [record] }, none)],
      [
        () => providers.lookupPhones({ phones: ["+1 512 555 0100"], carrierLookup: true }, none),
        () => fresh.lookupPhones({ phones: ["+1 512 555 0100"], carrierLookup: true }, none),
      ],
    ];
    for (const [first, second] of calls) expect(await first()).toEqual(await second());
  });

  it("answers different requests differently", async () => {
    const a = await providers.searchLeads({ query: "plumbers", limit: 5 }, none);
    const b = await providers.searchLeads({ query: "electricians", limit: 5 }, none);
    expect(a).not.toEqual(b);
    const x = await providers.runAiTask({ prompt: "one", model: "SMALL", maxTokens: 256 }, none);
    const y = await providers.runAiTask({ prompt: "two", model: "SMALL", maxTokens: 256 }, none);
    expect(x.output).not.toBe(y.output);
  });
});

describe("SimulatedProviders: results follow the request", () => {
  it("runAiTask echoes the model and never uses more than maxTokens", async () => {
    const small = await providers.runAiTask({ prompt: "Summarise this", model: "LARGE", maxTokens: 3 }, none);
    expect(small.model).toBe("LARGE");
    expect(small.tokensUsed).toBeGreaterThanOrEqual(1);
    expect(small.tokensUsed).toBeLessThanOrEqual(3);
    expect(small.output).toContain("simulated");
    const roomy = await providers.runAiTask({ prompt: "Summarise this", model: "LARGE", maxTokens: 8192 }, none);
    expect(roomy.tokensUsed).toBeLessThanOrEqual(8192);
    expect(roomy.tokensUsed).toBeGreaterThan(3);
  });

  it("searchLeads returns at most `limit` leads out of a total at least as large", async () => {
    for (const limit of [1, 25, 500]) {
      const result = await providers.searchLeads({ query: "roofers", location: "Denver", limit }, none);
      expect(result.leads.length).toBeLessThanOrEqual(limit);
      expect(result.total).toBeGreaterThanOrEqual(result.leads.length);
      expect(result.leads.every((lead) => lead.city === "Denver" && lead.name.length > 0)).toBe(true);
    }
    // A bigger limit extends the same list.
    const five = await providers.searchLeads({ query: "roofers", limit: 5 }, none);
    const ten = await providers.searchLeads({ query: "roofers", limit: 10 }, none);
    expect(ten.leads.slice(0, five.leads.length)).toEqual(five.leads);
  });

  it("about half of all searches and traces find fewer results than asked for (settlement below the hold)", async () => {
    const queries = Array.from({ length: 200 }, (_, i) => `query ${i}`);
    let fewerLeads = 0;
    let fewerListings = 0;
    let fewerMatches = 0;
    for (const query of queries) {
      if ((await providers.searchLeads({ query, limit: 50 }, none)).leads.length < 50) fewerLeads++;
      if ((await providers.searchMls({ area: query, limit: 50, includeHistory: false }, none)).listings.length < 50) fewerListings++;
      const records = [1, 2, 3].map((n) => ({ firstName: query, lastName: `Doe${n}`, address: "1 Main St" }));
      if ((await providers.skipTrace({ records }, none)).matches.length < 3) fewerMatches++;
    }
    for (const fewer of [fewerLeads, fewerListings]) {
      expect(fewer).toBeGreaterThan(60);
      expect(fewer).toBeLessThan(140);
    }
    // Each record matches about half the time, so most lists of three have a miss.
    expect(fewerMatches).toBeGreaterThan(120);
    expect(fewerMatches).toBeLessThan(200);
  });

  it("searchMls returns at most `limit` listings, with history only when asked", async () => {
    const plain = await providers.searchMls({ area: "Boise", limit: 30, includeHistory: false }, none);
    expect(plain.listings.length).toBeGreaterThan(0);
    expect(plain.listings.length).toBeLessThanOrEqual(30);
    expect(plain.listings.every((l) => l.history == null && l.price > 0 && l.address.endsWith("Boise"))).toBe(true);
    const withHistory = await providers.searchMls({ area: "Boise", limit: 30, includeHistory: true }, none);
    expect(withHistory.listings).toHaveLength(plain.listings.length);
    expect(withHistory.listings.every((l) => Array.isArray(l.history) && l.history.length > 0)).toBe(true);
    expect(withHistory.listings.map((l) => l.mlsId)).toEqual(plain.listings.map((l) => l.mlsId));
  });

  it("harvestDomain returns at most `limit` distinct emails and hosts under the domain", async () => {
    const many = await providers.harvestDomain({ domain: "example.org", sources: ["bing", "crtsh", "otx"], limit: 1000 }, none);
    expect(many.emails.length).toBeGreaterThan(0);
    expect(many.hosts.length).toBeGreaterThan(0);
    expect(many.emails.every((e) => e.endsWith("@example.org"))).toBe(true);
    expect(many.hosts.every((h) => h.endsWith(".example.org"))).toBe(true);
    expect(new Set(many.emails).size).toBe(many.emails.length);
    expect(new Set(many.hosts).size).toBe(many.hosts.length);

    const capped = await providers.harvestDomain({ domain: "example.org", sources: ["bing", "crtsh", "otx"], limit: 2 }, none);
    expect(capped.emails.length).toBeLessThanOrEqual(2);
    expect(capped.hosts.length).toBeLessThanOrEqual(2);

    // Results come from the requested sources: one source finds a subset of what three find.
    const one = await providers.harvestDomain({ domain: "example.org", sources: ["bing"], limit: 1000 }, none);
    expect(one.emails.every((e) => many.emails.includes(e))).toBe(true);
  });

  it("skipTrace lists the records that matched, in order, each with at least one phone", async () => {
    const alan = { firstName: "Alan", lastName: "Turing", address: "2 Side Rd" };
    const records = [record, alan, record, alan];
    const result = await providers.skipTrace({ records }, none);
    const alone = await providers.skipTrace({ records: [record] }, none);
    // The same person matches the same way wherever they are in the list.
    const recordMatches = alone.matches.length === 1;
    const indexes = result.matches.map((m) => m.recordIndex);
    expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
    expect(indexes.includes(0)).toBe(recordMatches);
    expect(indexes.includes(2)).toBe(recordMatches);
    expect(indexes.includes(1)).toBe(indexes.includes(3));
    if (recordMatches) {
      const [first, second] = result.matches.filter((m) => m.recordIndex === 0 || m.recordIndex === 2);
      expect(second.phones).toEqual(first.phones);
      expect(second.emails).toEqual(first.emails);
    }
    expect(result.matches.every((m) => m.phones.length > 0)).toBe(true);
    for (const match of result.matches) {
      expect(match.phones.every((p) => /^\+1\d{3}55501\d{2}$/.test(p))).toBe(true);
      expect(match.emails.every((e) => e.endsWith("@mail.example"))).toBe(true);
    }
  });

  it("lookupPhones validates by digit count and adds carrier data only when asked", async () => {
    const phones = ["+1 (512) 555-0100", "123456789", "1234567890", "123456789012345", "1234567890123456", "abc"];
    const plain = await providers.lookupPhones({ phones, carrierLookup: false }, none);
    expect(plain.results.map((r) => r.phone)).toEqual(phones);
    expect(plain.results.map((r) => r.valid)).toEqual([true, false, true, true, false, false]);
    expect(plain.results.every((r) => r.carrier == null && r.lineType == null)).toBe(true);

    const looked = await providers.lookupPhones({ phones, carrierLookup: true }, none);
    for (const result of looked.results) {
      if (result.valid) {
        expect(typeof result.carrier).toBe("string");
        expect(["mobile", "landline", "voip"]).toContain(result.lineType);
      } else {
        expect(result.carrier).toBeNull();
      }
    }
  });
});

describe("SimulatedProviders: failure simulation", () => {
  const request = { query: "plumbers", limit: 3 };

  it('"system" throws a plain error, which the charge path refunds', async () => {
    const error = await providers.searchLeads(request, { simulateFailure: "system" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe("simulated provider outage");
    expect(isUserInputError(error)).toBe(false);
  });

  it('"input" throws a BAD_USER_INPUT error, which the charge path keeps', async () => {
    const error = await providers.runAiTask({ prompt: "x", model: "SMALL", maxTokens: 1 }, { simulateFailure: "input" }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BadUserInputError);
    expect((error as Error).message).toBe("Simulated provider rejected the input");
    expect(isUserInputError(error)).toBe(true);
  });

  it('"slow" waits slowMs and then answers normally', async () => {
    const started = Date.now();
    const result = await providers.searchLeads(request, { simulateFailure: "slow", slowMs: 60 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(50);
    expect(result).toEqual(await providers.searchLeads(request, none));
  });

  it('"slow" uses the configured default wait', async () => {
    const quick = new SimulatedProviders({ defaultSlowMs: 40 });
    const started = Date.now();
    await quick.lookupPhones({ phones: ["5125550100"], carrierLookup: false }, { simulateFailure: "slow" });
    expect(Date.now() - started).toBeGreaterThanOrEqual(30);
  });

  it('an abort cuts a "slow" call short with an error', async () => {
    const controller = new AbortController();
    const started = Date.now();
    const call = providers.searchMls(
      { area: "Boise", limit: 1, includeHistory: false },
      { simulateFailure: "slow", slowMs: 10_000, signal: controller.signal },
    );
    setTimeout(() => controller.abort(new Error("client went away")), 20);
    const error = await call.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe("simulated provider call aborted");
    expect(isUserInputError(error)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("does not start a call whose signal is already aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(providers.skipTrace({ records: [record] }, { signal: controller.signal })).rejects.toThrow(
      "simulated provider call aborted",
    );
  });

  it("answers without delay when no failure is asked for", async () => {
    const started = Date.now();
    await providers.harvestDomain({ domain: "example.com", sources: ["bing", "otx", "yahoo"], limit: 1000 }, none);
    await providers.skipTrace({ records: Array.from({ length: 1000 }, () => record) }, none);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
