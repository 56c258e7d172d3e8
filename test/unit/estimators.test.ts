import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ESTIMATORS, formatZodError, normalizeEstimate } from "../../src/credits/estimators/registry.js";
import { HARVEST_SOURCES, hostNameProblem } from "../../src/credits/estimators/theharvester.js";

type Input = Record<string, unknown>;

function estimator(name: string) {
  const found = ESTIMATORS.get(name);
  if (!found) throw new Error(`no estimator ${name}`);
  return found;
}

/** Validates like the charge wrapper does: the whole args object. */
function parse(name: string, input: unknown, extra: Input = {}) {
  return estimator(name).args.safeParse({ subscriptionId: "sub-1", input, ...extra });
}

/** The price of valid input, normalised as the wrapper charges it. */
function price(name: string, input: Input): number {
  const result = parse(name, input);
  if (!result.success) throw new Error(formatZodError(result.error));
  return normalizeEstimate(estimator(name).estimate(result.data));
}

/** The one-line message of invalid input. */
function rejection(name: string, input: unknown): string {
  const result = parse(name, input);
  if (result.success) throw new Error(`expected ${JSON.stringify(input)} to be rejected`);
  return formatZodError(result.error);
}

const SOURCES = [...HARVEST_SOURCES];
const record = { firstName: "Ada", lastName: "Lovelace", address: "1 Main St" };

describe("registry", () => {
  it("holds DESIGN.md's six estimators (and any added since) under their own names", () => {
    expect([...ESTIMATORS.keys()]).toEqual(expect.arrayContaining(["ai", "leads", "mls", "phone", "skiptrace", "theharvester"]));
    for (const [name, e] of ESTIMATORS) {
      expect(e.name).toBe(name);
      expect(e.description.length).toBeGreaterThan(0);
    }
  });

  it("passes the other field arguments through untouched", () => {
    const result = parse("leads", { query: "plumbers" }, { creditAmount: 7, extra: "kept" });
    expect(result.success).toBe(true);
    expect(result.data).toMatchObject({ subscriptionId: "sub-1", creditAmount: 7, extra: "kept" });
  });

  it("requires input to be an object", () => {
    expect(formatZodError(estimator("ai").args.safeParse({ subscriptionId: "s" }).error!)).toBe("input is required.");
    expect(rejection("ai", "hello")).toBe("input must be an object.");
    expect(rejection("ai", null)).toBe("input is required.");
  });

  it("accepts input given as a class instance, as type-graphql passes it", () => {
    class LeadSearchInput {
      query = "roofers";
      limit = 3;
    }
    expect(price("leads", new LeadSearchInput() as unknown as Input)).toBe(3);
  });
});

describe("ai estimator", () => {
  const prompt4 = "abcd"; // one prompt token

  it("charges at least 1", () => {
    expect(price("ai", { prompt: "a", maxTokens: 1 })).toBe(1);
  });

  it("applies the defaults: SMALL and 256 max tokens", () => {
    const result = parse("ai", { prompt: "hi" });
    expect(result.data?.input).toEqual({ prompt: "hi", model: "SMALL", maxTokens: 256 });
    expect(price("ai", { prompt: "hi" })).toBe(1);
    expect(parse("ai", { prompt: "hi", model: null, maxTokens: null }).data?.input).toEqual({
      prompt: "hi",
      model: "SMALL",
      maxTokens: 256,
    });
  });

  it("rounds up per started 1,000 tokens", () => {
    // 1 prompt token + 999 = 1,000 tokens -> 1; + 1,000 = 1,001 tokens -> 2.
    expect(price("ai", { prompt: prompt4, maxTokens: 999 })).toBe(1);
    expect(price("ai", { prompt: prompt4, maxTokens: 1000 })).toBe(2);
    // 5 characters are 2 prompt tokens: 2 + 998 = 1,000 -> 1; 2 + 999 -> 2.
    expect(price("ai", { prompt: "abcde", maxTokens: 998 })).toBe(1);
    expect(price("ai", { prompt: "abcde", maxTokens: 999 })).toBe(2);
    // 4,000 characters are 1,000 prompt tokens: + 1,000 = 2,000 -> 2; + 1,001 -> 3.
    expect(price("ai", { prompt: "x".repeat(4000), maxTokens: 1000 })).toBe(2);
    expect(price("ai", { prompt: "x".repeat(4000), maxTokens: 1001 })).toBe(3);
  });

  it("multiplies by 5 for LARGE", () => {
    expect(price("ai", { prompt: prompt4, maxTokens: 999, model: "LARGE" })).toBe(5);
    expect(price("ai", { prompt: prompt4, maxTokens: 1000, model: "LARGE" })).toBe(10);
    expect(price("ai", { prompt: prompt4, maxTokens: 1000, model: "SMALL" })).toBe(2);
  });

  it("prices the maximum input", () => {
    // 100,000 characters = 25,000 tokens, + 8,192 = 33,192 -> 34, x5.
    expect(price("ai", { prompt: "x".repeat(100_000), maxTokens: 8192 })).toBe(34);
    expect(price("ai", { prompt: "x".repeat(100_000), maxTokens: 8192, model: "LARGE" })).toBe(170);
  });

  it("counts characters, not UTF-16 units", () => {
    // 8 emoji are 8 characters (16 UTF-16 units): 2 tokens + 998 = 1,000 -> 1.
    expect(price("ai", { prompt: "😀".repeat(8), maxTokens: 998 })).toBe(1);
    expect(parse("ai", { prompt: "😀".repeat(100_000) }).success).toBe(true);
  });

  it("bounds the prompt to 1-100,000 characters", () => {
    expect(rejection("ai", { prompt: "" })).toBe("input.prompt must be between 1 and 100,000 characters.");
    expect(parse("ai", { prompt: "x" }).success).toBe(true);
    expect(parse("ai", { prompt: "x".repeat(100_000) }).success).toBe(true);
    expect(rejection("ai", { prompt: "x".repeat(100_001) })).toContain("input.prompt");
    expect(rejection("ai", {})).toBe("input.prompt is required.");
    expect(rejection("ai", { prompt: 42 })).toBe("input.prompt must be a string.");
  });

  it("bounds maxTokens to 1-8,192 whole tokens", () => {
    expect(rejection("ai", { prompt: "x", maxTokens: 0 })).toBe("input.maxTokens must be between 1 and 8,192.");
    expect(parse("ai", { prompt: "x", maxTokens: 1 }).success).toBe(true);
    expect(parse("ai", { prompt: "x", maxTokens: 8192 }).success).toBe(true);
    expect(rejection("ai", { prompt: "x", maxTokens: 8193 })).toBe("input.maxTokens must be between 1 and 8,192.");
    expect(rejection("ai", { prompt: "x", maxTokens: 1.5 })).toBe("input.maxTokens must be a whole number.");
  });

  it("accepts only SMALL and LARGE", () => {
    expect(rejection("ai", { prompt: "x", model: "HUGE" })).toBe("input.model must be SMALL or LARGE.");
    expect(rejection("ai", { prompt: "x", model: "large" })).toBe("input.model must be SMALL or LARGE.");
  });
});

describe("leads estimator", () => {
  it("charges the limit, 25 by default", () => {
    expect(price("leads", { query: "dentists" })).toBe(25);
    expect(price("leads", { query: "dentists", limit: null })).toBe(25);
    expect(price("leads", { query: "dentists", limit: 1 })).toBe(1);
    expect(price("leads", { query: "dentists", limit: 500 })).toBe(500);
  });

  it("bounds the limit to 1-500", () => {
    expect(rejection("leads", { query: "q", limit: 0 })).toBe("input.limit must be between 1 and 500.");
    expect(rejection("leads", { query: "q", limit: 501 })).toBe("input.limit must be between 1 and 500.");
    expect(rejection("leads", { query: "q", limit: -5 })).toBe("input.limit must be between 1 and 500.");
    expect(rejection("leads", { query: "q", limit: "10" })).toBe("input.limit must be a whole number.");
  });

  it("needs a non-blank query of at most 500 characters", () => {
    expect(rejection("leads", { query: "" })).toBe("input.query must not be empty.");
    expect(rejection("leads", { query: "   " })).toBe("input.query must not be empty.");
    expect(rejection("leads", {})).toBe("input.query is required.");
    expect(parse("leads", { query: "q".repeat(500) }).success).toBe(true);
    expect(rejection("leads", { query: "q".repeat(501) })).toBe("input.query must be at most 500 characters.");
    // The bound applies to the trimmed query.
    expect(parse("leads", { query: ` ${"q".repeat(500)} ` }).data?.input.query).toBe("q".repeat(500));
  });

  it("takes an optional location of at most 200 characters", () => {
    expect(parse("leads", { query: "q", location: null }).success).toBe(true);
    expect(parse("leads", { query: "q", location: "l".repeat(200) }).success).toBe(true);
    expect(rejection("leads", { query: "q", location: "l".repeat(201) })).toBe(
      "input.location must be at most 200 characters.",
    );
  });
});

describe("mls estimator", () => {
  it("charges per started 25 listings, 25 and no history by default", () => {
    expect(parse("mls", { area: "Austin" }).data?.input).toEqual({ area: "Austin", limit: 25, includeHistory: false });
    expect(price("mls", { area: "Austin" })).toBe(1);
    expect(price("mls", { area: "Austin", limit: 1 })).toBe(1);
    expect(price("mls", { area: "Austin", limit: 25 })).toBe(1);
    expect(price("mls", { area: "Austin", limit: 26 })).toBe(2);
    expect(price("mls", { area: "Austin", limit: 50 })).toBe(2);
    expect(price("mls", { area: "Austin", limit: 51 })).toBe(3);
    expect(price("mls", { area: "Austin", limit: 500 })).toBe(20);
  });

  it("doubles with history", () => {
    expect(price("mls", { area: "Austin", limit: 1, includeHistory: true })).toBe(2);
    expect(price("mls", { area: "Austin", limit: 26, includeHistory: true })).toBe(4);
    expect(price("mls", { area: "Austin", limit: 500, includeHistory: true })).toBe(40);
    expect(price("mls", { area: "Austin", limit: 500, includeHistory: null })).toBe(20);
  });

  it("bounds the limit to 1-500 and needs an area of at most 200 characters", () => {
    expect(rejection("mls", { area: "A", limit: 0 })).toBe("input.limit must be between 1 and 500.");
    expect(rejection("mls", { area: "A", limit: 501 })).toBe("input.limit must be between 1 and 500.");
    expect(rejection("mls", { area: " " })).toBe("input.area must not be empty.");
    expect(parse("mls", { area: "a".repeat(200) }).success).toBe(true);
    expect(rejection("mls", { area: "a".repeat(201) })).toBe("input.area must be at most 200 characters.");
    expect(rejection("mls", { area: "A", includeHistory: "yes" })).toBe("input.includeHistory must be true or false.");
  });
});

describe("theharvester estimator", () => {
  it("charges per source per started 100 results, 100 by default", () => {
    expect(parse("theharvester", { domain: "example.com", sources: ["bing"] }).data?.input.limit).toBe(100);
    expect(price("theharvester", { domain: "example.com", sources: ["bing"] })).toBe(1);
    expect(price("theharvester", { domain: "example.com", sources: ["bing"], limit: 1 })).toBe(1);
    expect(price("theharvester", { domain: "example.com", sources: ["bing"], limit: 101 })).toBe(2);
    expect(price("theharvester", { domain: "example.com", sources: ["bing", "otx", "yahoo"], limit: 200 })).toBe(6);
    expect(price("theharvester", { domain: "example.com", sources: ["bing", "otx", "yahoo"], limit: 201 })).toBe(9);
  });

  it("prices the maximum input", () => {
    expect(price("theharvester", { domain: "example.com", sources: SOURCES, limit: 1000 })).toBe(100);
  });

  it("bounds the limit to 1-1,000", () => {
    const base = { domain: "example.com", sources: ["bing"] };
    expect(rejection("theharvester", { ...base, limit: 0 })).toBe("input.limit must be between 1 and 1,000.");
    expect(rejection("theharvester", { ...base, limit: 1001 })).toBe("input.limit must be between 1 and 1,000.");
    expect(parse("theharvester", { ...base, limit: 1000 }).success).toBe(true);
  });

  it("needs 1-10 distinct known sources", () => {
    expect(rejection("theharvester", { domain: "example.com", sources: [] })).toBe(
      "input.sources must have between 1 and 10 items.",
    );
    expect(rejection("theharvester", { domain: "example.com", sources: [...SOURCES, "bing"] })).toContain(
      "input.sources must have between 1 and 10 items",
    );
    expect(rejection("theharvester", { domain: "example.com", sources: ["bing", "otx", "bing"] })).toBe(
      'input.sources lists "bing" more than once.',
    );
    const unknown = rejection("theharvester", { domain: "example.com", sources: ["bing", "google"] });
    expect(unknown).toContain('input.sources[1] is not a known source: "google"');
    expect(unknown).toContain("crtsh");
    // Names are exact: no case folding.
    expect(rejection("theharvester", { domain: "example.com", sources: ["Bing"] })).toContain('"Bing"');
    expect(rejection("theharvester", { domain: "example.com" })).toBe("input.sources is required.");
  });

  it("lowercases the domain", () => {
    expect(parse("theharvester", { domain: "Mail.Example.COM", sources: ["otx"] }).data?.input.domain).toBe(
      "mail.example.com",
    );
  });

  it("accepts valid host names at the bounds", () => {
    const label63 = "a".repeat(63);
    const long = `${label63}.${label63}.${label63}.${"b".repeat(61)}`; // 253 characters
    expect(long.length).toBe(253);
    for (const domain of ["a.co", "x-1.example.org", "123.example.com", `${label63}.com`, long]) {
      expect(parse("theharvester", { domain, sources: ["bing"] }).success, domain).toBe(true);
    }
  });

  it("rejects bad domains with a reason", () => {
    const cases: Record<string, string> = {
      "": "input.domain must not be empty.",
      localhost: "input.domain must be a host name with at least one dot, e.g. example.com.",
      "example..com": "input.domain must not have empty labels",
      ".example.com": "input.domain must not have empty labels",
      "example.com.": "input.domain must not have empty labels",
      "-bad.com": 'input.domain has a label that starts or ends with a hyphen ("-bad")',
      "bad-.com": 'input.domain has a label that starts or ends with a hyphen ("bad-")',
      "exa_mple.com": "input.domain may only contain letters, digits, hyphens and dots",
      "exa mple.com": "input.domain may only contain letters, digits, hyphens and dots",
      "http://example.com": "input.domain may only contain letters, digits, hyphens and dots",
      [`${"a".repeat(64)}.com`]: "input.domain has a label longer than 63 characters",
      [`${"a.".repeat(126)}ab`]: "input.domain must be at most 253 characters.",
      "10.0.0.1": 'input.domain must end in a top-level domain with a letter (".1" is all digits, as in an IP address).',
      "example.123": 'input.domain must end in a top-level domain with a letter (".123" is all digits',
      // Refused, not trimmed: the caller learns that its input carries more than it meant to send.
      " example.com": "input.domain must not start or end with white space.",
      "example.com ": "input.domain must not start or end with white space.",
      "example.com\n": "input.domain must not start or end with white space.",
      "\texample.com": "input.domain must not start or end with white space.",
    };
    for (const [domain, message] of Object.entries(cases)) {
      expect(rejection("theharvester", { domain, sources: ["bing"] }), domain).toContain(message);
    }
    expect(hostNameProblem("example.com")).toBeNull();
  });
});

describe("skiptrace estimator", () => {
  it("charges one per record", () => {
    expect(price("skiptrace", { records: [record] })).toBe(1);
    expect(price("skiptrace", { records: [record, record, record] })).toBe(3);
    expect(price("skiptrace", { records: Array.from({ length: 1000 }, () => record) })).toBe(1000);
  });

  it("needs 1-1,000 records", () => {
    expect(rejection("skiptrace", { records: [] })).toBe("input.records must have between 1 and 1,000 items.");
    expect(rejection("skiptrace", { records: Array.from({ length: 1001 }, () => record) })).toBe(
      "input.records must have between 1 and 1,000 items.",
    );
  });

  it("checks every record's fields and names the record", () => {
    expect(rejection("skiptrace", { records: [record, { ...record, firstName: " " }] })).toBe(
      "input.records[1].firstName must not be empty.",
    );
    expect(rejection("skiptrace", { records: [{ firstName: "A", lastName: "B" }] })).toBe(
      "input.records[0].address is required.",
    );
    expect(parse("skiptrace", { records: [{ ...record, address: "a".repeat(200) }] }).success).toBe(true);
    expect(rejection("skiptrace", { records: [{ ...record, address: "a".repeat(201) }] })).toBe(
      "input.records[0].address must be at most 200 characters.",
    );
    expect(rejection("skiptrace", { records: [{ ...record, lastName: "l".repeat(201) }] })).toBe(
      "input.records[0].lastName must be at most 200 characters.",
    );
    const optional = { city: "c".repeat(100), state: "s".repeat(100), zip: "z".repeat(100) };
    expect(parse("skiptrace", { records: [{ ...record, ...optional }] }).success).toBe(true);
    expect(parse("skiptrace", { records: [{ ...record, city: null, state: null, zip: null }] }).success).toBe(true);
    expect(rejection("skiptrace", { records: [{ ...record, zip: "z".repeat(101) }] })).toBe(
      "input.records[0].zip must be at most 100 characters.",
    );
  });
});

describe("phone estimator", () => {
  it("charges one per phone, two with carrier lookup (off by default)", () => {
    expect(parse("phone", { phones: ["555"] }).data?.input.carrierLookup).toBe(false);
    expect(price("phone", { phones: ["555"] })).toBe(1);
    expect(price("phone", { phones: ["1", "2", "3"] })).toBe(3);
    expect(price("phone", { phones: ["1", "2", "3"], carrierLookup: true })).toBe(6);
    expect(price("phone", { phones: Array.from({ length: 1000 }, () => "5551234567"), carrierLookup: true })).toBe(2000);
  });

  it("needs 1-1,000 phones of 1-32 characters", () => {
    expect(rejection("phone", { phones: [] })).toBe("input.phones must have between 1 and 1,000 items.");
    expect(rejection("phone", { phones: Array.from({ length: 1001 }, () => "1") })).toBe(
      "input.phones must have between 1 and 1,000 items.",
    );
    expect(parse("phone", { phones: Array.from({ length: 1000 }, () => "1") }).success).toBe(true);
    expect(rejection("phone", { phones: ["1", ""] })).toBe("input.phones[1] must not be empty.");
    expect(parse("phone", { phones: ["9".repeat(32)] }).success).toBe(true);
    expect(rejection("phone", { phones: ["9".repeat(33)] })).toBe("input.phones[0] must be at most 32 characters.");
  });
});

describe("normalizeEstimate", () => {
  it("rounds fractions up to whole credits", () => {
    expect(normalizeEstimate(1.01)).toBe(2);
    expect(normalizeEstimate(2.5)).toBe(3);
    expect(normalizeEstimate(3)).toBe(3);
  });

  it("charges at least 1", () => {
    expect(normalizeEstimate(0)).toBe(1);
    expect(normalizeEstimate(0.2)).toBe(1);
    expect(normalizeEstimate(-0)).toBe(1);
    expect(normalizeEstimate(-7)).toBe(1);
  });

  it("throws on results that are not numbers, so the caller falls back", () => {
    expect(() => normalizeEstimate(Number.NaN)).toThrow(Error);
    expect(() => normalizeEstimate(Number.POSITIVE_INFINITY)).toThrow(Error);
    expect(() => normalizeEstimate(Number.NEGATIVE_INFINITY)).toThrow(Error);
    expect(() => normalizeEstimate("3" as unknown as number)).toThrow(Error);
    expect(() => normalizeEstimate(2 ** 60)).toThrow(Error);
  });
});

describe("formatZodError", () => {
  it("joins every issue into one line", () => {
    const message = rejection("leads", { query: "", limit: 0 });
    expect(message).toBe("input.query must not be empty; input.limit must be between 1 and 500.");
  });

  it("prefixes messages that do not name their field with the field path", () => {
    const schema = z.object({ input: z.object({ items: z.array(z.number()) }) });
    const result = schema.safeParse({ input: { items: [1, "two"] } });
    expect(formatZodError(result.error!)).toBe("input.items[1]: Invalid input: expected number, received string.");
  });
});
