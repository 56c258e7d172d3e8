/**
 * The outside services the metered operations call. The built-in implementations (simulated/) are
 * deterministic simulators; a deployment plugs in real ones with the same interface.
 *
 * `ProviderCallOptions.simulateFailure` comes from the `x-simulate-failure` header and is set only
 * when SIMULATE_FAILURES=1: "system" makes a provider throw a system error (the charge is refunded),
 * "input" a user-input error (the charge is kept), "slow" makes it wait SIMULATE_SLOW_MS first.
 */
export type SimulatedFailure = "system" | "input" | "slow";

export interface ProviderCallOptions {
  simulateFailure?: SimulatedFailure;
  /** Milliseconds a "slow" call waits. */
  slowMs?: number;
  /** Aborted when the request is gone (client disconnected, server shutting down). */
  signal?: AbortSignal;
}

export type AiModelName = "SMALL" | "LARGE";

export interface AiTaskRequest { prompt: string; model: AiModelName; maxTokens: number }
export interface AiTaskOutput { output: string; model: AiModelName; tokensUsed: number }

export interface LeadSearchRequest { query: string; location?: string | null; limit: number }
export interface LeadOutput { name: string; company?: string | null; email?: string | null; phone?: string | null; city?: string | null }
export interface LeadSearchOutput { leads: LeadOutput[]; total: number }

export interface MlsSearchRequest { area: string; limit: number; includeHistory: boolean }
export interface MlsListingOutput { mlsId: string; address: string; price: number; status: string; history?: string[] | null }
export interface MlsSearchOutput { listings: MlsListingOutput[] }

export interface HarvestRequest { domain: string; sources: string[]; limit: number }
export interface HarvestOutput { emails: string[]; hosts: string[] }

export interface SkipTraceRecordInput { firstName: string; lastName: string; address: string; city?: string | null; state?: string | null; zip?: string | null }
export interface SkipTraceRequest { records: SkipTraceRecordInput[] }
export interface SkipTraceOutput { matches: { recordIndex: number; phones: string[]; emails: string[] }[] }

export interface PhoneLookupRequest { phones: string[]; carrierLookup: boolean }
export interface PhoneLookupOutput { results: { phone: string; valid: boolean; lineType?: string | null; carrier?: string | null }[] }

export interface OperationProviders {
  runAiTask(request: AiTaskRequest, options: ProviderCallOptions): Promise<AiTaskOutput>;
  searchLeads(request: LeadSearchRequest, options: ProviderCallOptions): Promise<LeadSearchOutput>;
  searchMls(request: MlsSearchRequest, options: ProviderCallOptions): Promise<MlsSearchOutput>;
  harvestDomain(request: HarvestRequest, options: ProviderCallOptions): Promise<HarvestOutput>;
  skipTrace(request: SkipTraceRequest, options: ProviderCallOptions): Promise<SkipTraceOutput>;
  lookupPhones(request: PhoneLookupRequest, options: ProviderCallOptions): Promise<PhoneLookupOutput>;
}
