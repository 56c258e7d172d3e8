/**
 * SIMULATOR — not a real service. The built-in OperationProviders: every answer is made up,
 * derived from a SHA-256 hash of the request, so the same request always gets the same answer and
 * the server is usable (and testable) out of the box. A deployment replaces this class with real
 * providers implementing the same interface.
 *
 * Generated contact data stays fictional on purpose: e-mails use the reserved `.example` TLD (except
 * harvested ones, which must be under the requested domain) and phones the 555-01xx range NANP keeps
 * for fiction.
 *
 * Failure simulation (ProviderCallOptions.simulateFailure) lets tests and demos exercise the charge
 * path's refund and keep rules: "system" throws a plain Error, "input" a BadUserInputError, "slow"
 * waits `slowMs` (cut short when the request's signal aborts) and then answers normally.
 */
import { BadUserInputError } from "../../errors/errors.js";
import type {
  AiTaskOutput,
  AiTaskRequest,
  HarvestOutput,
  HarvestRequest,
  LeadOutput,
  LeadSearchOutput,
  LeadSearchRequest,
  MlsListingOutput,
  MlsSearchOutput,
  MlsSearchRequest,
  OperationProviders,
  PhoneLookupOutput,
  PhoneLookupRequest,
  ProviderCallOptions,
  SkipTraceOutput,
  SkipTraceRecordInput,
  SkipTraceRequest,
} from "../providers.js";
import { HashStream, seedOf } from "./hash.js";

export const DEFAULT_SIMULATED_SLOW_MS = 3_000;

export interface SimulatedProvidersOptions {
  /** How long a "slow" call waits when the call itself does not say (`ProviderCallOptions.slowMs`). */
  defaultSlowMs?: number;
}

const FIRST_NAMES = [
  "Ada", "Ben", "Carla", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
  "Kira", "Liam", "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sam", "Tara",
] as const;
const LAST_NAMES = [
  "Abbott", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen",
  "Khan", "Lopez", "Moreau", "Nakamura", "Okafor", "Patel", "Rossi", "Silva", "Turner", "Weber",
] as const;
const COMPANY_SUFFIXES = ["Labs", "Group", "Partners", "Holdings", "Works", "Supply", "Realty", "Services"] as const;
const CITIES = ["Springfield", "Riverton", "Lakeview", "Fairmont", "Greenville", "Oakridge", "Maple Bay", "Cedar Falls"] as const;
const STREETS = ["Oak", "Maple", "Pine", "Cedar", "Elm", "Birch", "Willow", "Aspen", "Lake", "Hill"] as const;
const STREET_SUFFIXES = ["St", "Ave", "Rd", "Ln", "Dr", "Ct", "Way", "Blvd"] as const;
const MLS_STATUSES = ["ACTIVE", "PENDING", "SOLD", "WITHDRAWN"] as const;
const HOST_PREFIXES = ["www", "mail", "api", "vpn", "dev", "staging", "cdn", "portal", "shop", "git", "mx", "ns"] as const;
const MAILBOXES = ["info", "sales", "support", "admin", "hr", "billing", "press", "security"] as const;
const CARRIERS = ["Simulated Mobile", "Example Telecom", "Fictional Wireless", "Demo Cable"] as const;
const LINE_TYPES = ["mobile", "landline", "voip"] as const;
const AI_WORDS = [
  "the", "result", "suggests", "a", "simulated", "answer", "with", "clear", "steps", "and",
  "some", "careful", "notes", "about", "input", "context", "summary", "plan", "next", "data",
] as const;

/** Whole, non-negative: the simulator trusts validated input but must never loop on garbage. */
function count(value: number): number {
  return Number.isFinite(value) ? Math.max(0, Math.floor(value)) : 0;
}

function slug(text: string): string {
  const cleaned = text.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  return cleaned === "" ? "company" : cleaned.slice(0, 40);
}

function capitalise(word: string): string {
  return word === "" ? word : word[0].toUpperCase() + word.slice(1).toLowerCase();
}

/** A fictional North American number: any area code, exchange 555, line 0100–0199. */
function fictionalPhone(stream: HashStream): string {
  return `+1${stream.int(201, 989)}55501${String(stream.int(0, 99)).padStart(2, "0")}`;
}

function characterCount(text: string): number {
  let length = 0;
  for (const _ of text) length += 1;
  return length;
}

function abortedError(signal: AbortSignal): Error {
  return new Error("simulated provider call aborted", { cause: signal.reason });
}

/** Waits `ms`, or rejects as soon as `signal` aborts (and then leaves no timer behind). */
function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve: () => void, reject: (error: Error) => void): void => {
    if (signal?.aborted) {
      reject(abortedError(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortedError(signal as AbortSignal));
    };
    const timer = setTimeout((): void => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * How many of `limit` results a search finds: all of them for about half of all searches, else a
 * fraction (possibly none), read from the search's own stream. Real providers often find fewer than
 * asked for, and the metered price then settles below the hold.
 */
function foundOf(stream: HashStream, limit: number): number {
  if (!stream.fork("found").chance(0.5)) return limit;
  return Math.floor((limit * stream.fork("fraction").int(0, 99)) / 100);
}

function simulateAi(request: AiTaskRequest): AiTaskOutput {
  // The answer's length depends on the prompt and model only, so raising maxTokens never changes
  // an answer that already fitted.
  const stream = new HashStream(seedOf("ai", { prompt: request.prompt, model: request.model }));
  const wanted = Math.ceil(characterCount(request.prompt) / 4) + stream.int(16, 512);
  const tokensUsed = Math.max(1, Math.min(count(request.maxTokens), wanted));
  const words: string[] = [];
  for (let i = 0; i < Math.min(tokensUsed, 48); i += 1) words.push(stream.pick(AI_WORDS));
  const output = `[simulated ${request.model} model, ref ${stream.hex(8)}] ${capitalise(words.join(" "))}.`;
  return { output, model: request.model, tokensUsed };
}

function simulateLeads(request: LeadSearchRequest): LeadSearchOutput {
  // Seeded by the search, not the limit: a bigger limit returns the same first leads and more.
  const search = new HashStream(seedOf("leads", { query: request.query, location: request.location ?? null }));
  const found = foundOf(search, count(request.limit));
  const total = found < count(request.limit) ? found : Math.max(found, search.int(0, 2_000));
  const brand = capitalise(request.query.trim().split(/\s+/)[0] ?? "") || "Acme";
  const leads: LeadOutput[] = [];
  for (let i = 0; i < found; i += 1) {
    const s = search.fork(i);
    const first = s.pick(FIRST_NAMES);
    const last = s.pick(LAST_NAMES);
    const company = `${brand} ${s.pick(COMPANY_SUFFIXES)}`;
    leads.push({
      name: `${first} ${last}`,
      company,
      email: s.chance(0.8) ? `${first}.${last}@${slug(company)}.example`.toLowerCase() : null,
      phone: s.chance(0.7) ? fictionalPhone(s) : null,
      city: request.location ?? s.pick(CITIES),
    });
  }
  return { leads, total };
}

function simulateMls(request: MlsSearchRequest): MlsSearchOutput {
  const area = new HashStream(seedOf("mls", { area: request.area }));
  const listings: MlsListingOutput[] = [];
  const found = foundOf(area, count(request.limit));
  for (let i = 0; i < found; i += 1) {
    const s = area.fork(i);
    const price = s.int(80, 2_500) * 1_000;
    const listing: MlsListingOutput = {
      mlsId: `SIM-${s.hex(8).toUpperCase()}`,
      address: `${s.int(1, 9_999)} ${s.pick(STREETS)} ${s.pick(STREET_SUFFIXES)}, ${request.area}`,
      price,
      status: s.pick(MLS_STATUSES),
      history: null,
    };
    if (request.includeHistory) {
      const history: string[] = [];
      let year = s.int(2005, 2015);
      for (let event = s.int(1, 4); event > 0; event -= 1) {
        year += s.int(1, 4);
        const then = Math.round((price * s.int(60, 110)) / 100_000) * 1_000;
        history.push(`${year}-${String(s.int(1, 12)).padStart(2, "0")}: sold for $${then.toLocaleString("en-US")}`);
      }
      listing.history = history;
    }
    listings.push(listing);
  }
  return { listings };
}

function simulateHarvest(request: HarvestRequest): HarvestOutput {
  const domain = request.domain.toLowerCase();
  const limit = count(request.limit);
  const emails = new Set<string>();
  const hosts = new Set<string>();
  // Each source finds its own slice of the domain; the union is capped at `limit`, like a real
  // harvest that stops once it has enough.
  for (const source of request.sources) {
    const s = new HashStream(seedOf("harvest", { domain, source }));
    for (let i = s.int(3, 60); i > 0 && emails.size < limit; i -= 1) {
      const local = s.chance(0.3)
        ? s.pick(MAILBOXES)
        : `${s.pick(FIRST_NAMES)}.${s.pick(LAST_NAMES)}`.toLowerCase();
      emails.add(`${local}@${domain}`);
    }
    for (let i = s.int(2, 40); i > 0 && hosts.size < limit; i -= 1) {
      const suffix = s.chance(0.4) ? String(s.int(1, 20)) : "";
      hosts.add(`${s.pick(HOST_PREFIXES)}${suffix}.${domain}`);
    }
  }
  return { emails: [...emails], hosts: [...hosts] };
}

function simulateSkipTrace(request: SkipTraceRequest): SkipTraceOutput {
  const traced = request.records.map((record: SkipTraceRecordInput, recordIndex: number) => {
    // Seeded by the record alone: the same person matches the same way at any position.
    const s = new HashStream(seedOf("skiptrace", record));
    return { record, recordIndex, s, matched: s.chance(0.5) };
  });
  return {
    // Like a real skip trace, only the records that matched are listed (pay per hit).
    matches: traced.filter((t) => t.matched).map(({ record, recordIndex, s }) => {
      const phones: string[] = [];
      for (let i = s.int(1, 3); i > 0; i -= 1) phones.push(fictionalPhone(s));
      const emails: string[] = [];
      const local = `${record.firstName}.${record.lastName}`.toLowerCase().replace(/[^a-z0-9.]+/g, "");
      for (let i = s.int(0, 2); i > 0; i -= 1) emails.push(`${local || "person"}${s.int(1, 99)}@mail.example`);
      return { recordIndex, phones, emails };
    }),
  };
}

function simulatePhones(request: PhoneLookupRequest): PhoneLookupOutput {
  return {
    results: request.phones.map((phone: string) => {
      const digits = phone.replace(/\D/g, "");
      const valid = digits.length >= 10 && digits.length <= 15;
      if (!request.carrierLookup || !valid) return { phone, valid, lineType: null, carrier: null };
      const s = new HashStream(seedOf("phone", digits));
      return { phone, valid, lineType: s.pick(LINE_TYPES), carrier: s.pick(CARRIERS) };
    }),
  };
}

/** Deterministic simulator of every outside service; see the file comment. */
export class SimulatedProviders implements OperationProviders {
  private readonly defaultSlowMs: number;

  constructor(options: SimulatedProvidersOptions = {}) {
    this.defaultSlowMs = options.defaultSlowMs ?? DEFAULT_SIMULATED_SLOW_MS;
  }

  async runAiTask(request: AiTaskRequest, options: ProviderCallOptions): Promise<AiTaskOutput> {
    await this.beforeCall(options);
    return simulateAi(request);
  }

  async searchLeads(request: LeadSearchRequest, options: ProviderCallOptions): Promise<LeadSearchOutput> {
    await this.beforeCall(options);
    return simulateLeads(request);
  }

  async searchMls(request: MlsSearchRequest, options: ProviderCallOptions): Promise<MlsSearchOutput> {
    await this.beforeCall(options);
    return simulateMls(request);
  }

  async harvestDomain(request: HarvestRequest, options: ProviderCallOptions): Promise<HarvestOutput> {
    await this.beforeCall(options);
    return simulateHarvest(request);
  }

  async skipTrace(request: SkipTraceRequest, options: ProviderCallOptions): Promise<SkipTraceOutput> {
    await this.beforeCall(options);
    return simulateSkipTrace(request);
  }

  async lookupPhones(request: PhoneLookupRequest, options: ProviderCallOptions): Promise<PhoneLookupOutput> {
    await this.beforeCall(options);
    return simulatePhones(request);
  }

  /**
   * Plays the requested failure, if any. A call whose request is already gone is not started: a
   * real provider call would be wasted work, and the charge path refunds it as a system error.
   */
  private async beforeCall(options: ProviderCallOptions): Promise<void> {
    if (options.signal?.aborted) throw abortedError(options.signal);
    switch (options.simulateFailure) {
      case "system":
        throw new Error("simulated provider outage");
      case "input":
        throw new BadUserInputError("Simulated provider rejected the input");
      case "slow": {
        const ms = options.slowMs ?? this.defaultSlowMs;
        await delay(Number.isFinite(ms) ? Math.max(0, ms) : 0, options.signal);
        return;
      }
      default:
        return;
    }
  }
}
