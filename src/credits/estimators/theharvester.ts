/**
 * Prices harvestDomain: every source is queried separately and pages its results by 100, so the
 * price is one credit per source per started 100 results.
 */
import { z } from "zod";
import { defineEstimator } from "./estimator.js";
import { expects, fieldArgs, inputObject, intBetweenOr, issuePath, listOf } from "./fields.js";

export const HARVEST_SOURCES = Object.freeze([
  "bing",
  "crtsh",
  "dnsdumpster",
  "duckduckgo",
  "github",
  "hackertarget",
  "otx",
  "rapiddns",
  "urlscan",
  "yahoo",
] as const);
export type HarvestSource = (typeof HARVEST_SOURCES)[number];

export const HARVEST_MAX_LIMIT = 1_000;
export const HARVEST_DEFAULT_LIMIT = 100;
export const HARVEST_PAGE_SIZE = 100;
export const HARVEST_MAX_SOURCES = HARVEST_SOURCES.length;

const KNOWN_SOURCES: ReadonlySet<string> = new Set(HARVEST_SOURCES);
const LABEL_CHARS = /^[a-z0-9-]+$/;

/**
 * Why `domain` (already lowercased) is not a host name we can harvest, or null when it is one. A
 * reason per rule, because "invalid domain" alone does not tell the user what to fix. White space
 * is refused rather than trimmed, as for every other identifier the API takes: " example.com" is
 * not a host name, and the caller should learn that its input carries more than it meant to send.
 */
export function hostNameProblem(domain: string): string | null {
  if (domain.length === 0) return "must not be empty";
  if (domain.trim() !== domain) return "must not start or end with white space";
  if (domain.length > 253) return "must be at most 253 characters";
  const labels = domain.split(".");
  if (labels.length < 2) return "must be a host name with at least one dot, e.g. example.com";
  for (const label of labels) {
    if (label.length === 0) return "must not have empty labels (two dots in a row, or a leading or trailing dot)";
    if (label.length > 63) return `has a label longer than 63 characters ("${label.slice(0, 20)}…")`;
    if (!LABEL_CHARS.test(label)) return `may only contain letters, digits, hyphens and dots (bad label "${label}")`;
    if (label.startsWith("-") || label.endsWith("-")) return `has a label that starts or ends with a hyphen ("${label}")`;
  }
  // An all-digit last label is what an IPv4 address ends with; no top-level domain is all digits.
  const last = labels[labels.length - 1];
  if (/^[0-9]+$/.test(last)) return `must end in a top-level domain with a letter (".${last}" is all digits, as in an IP address)`;
  return null;
}

const domain = z
  .string(expects("a string"))
  .toLowerCase()
  .refine((value: string): boolean => hostNameProblem(value) === null, {
    error: (issue): string => `${issuePath(issue)} ${hostNameProblem(String(issue.input)) ?? "is not a valid host name"}`,
  });

const source = z.string(expects("a string")).refine((value: string): boolean => KNOWN_SOURCES.has(value), {
  error: (issue): string =>
    `${issuePath(issue)} is not a known source: ${JSON.stringify(issue.input)} (known: ${HARVEST_SOURCES.join(", ")})`,
});

function firstDuplicate(values: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (const value of values) {
    if (seen.has(value)) return value;
    seen.add(value);
  }
  return undefined;
}

// Each source is charged, so listing one twice would charge twice for the same results.
const sources = listOf(source, 1, HARVEST_MAX_SOURCES).refine(
  (values: string[]): boolean => firstDuplicate(values) === undefined,
  {
    error: (issue): string => {
      const values = Array.isArray(issue.input) ? issue.input.map(String) : [];
      return `${issuePath(issue)} lists ${JSON.stringify(firstDuplicate(values) ?? "a source")} more than once`;
    },
  },
);

const harvestArgs = fieldArgs(
  inputObject({
    domain,
    sources,
    limit: intBetweenOr(1, HARVEST_MAX_LIMIT, HARVEST_DEFAULT_LIMIT),
  }),
);

export type HarvestArgs = z.output<typeof harvestArgs>;

export const theHarvesterEstimator = defineEstimator<HarvestArgs>({
  name: "theharvester",
  description: "len(sources) × ceil(limit / 100) credits",
  args: harvestArgs,
  estimate({ input }: HarvestArgs): number {
    return input.sources.length * Math.ceil(input.limit / HARVEST_PAGE_SIZE);
  },
});
