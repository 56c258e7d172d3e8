/**
 * The six metered operations. Each field declares its price with @credits; the charge wrapper has
 * authenticated, validated, authorized, rate-limited and debited before these methods run, so they
 * only call their provider.
 */
import { Arg, Ctx, Directive, ID, Int, Mutation, Resolver } from "type-graphql";
import type { ProviderCallOptions } from "../../providers/providers.js";
import type { RequestContext } from "../context.js";
import { AiModel } from "../types/enums.js";
import {
  AiTaskInput,
  AiTaskResult,
  HarvestInput,
  HarvestResult,
  LeadSearchInput,
  LeadSearchResult,
  MlsSearchInput,
  MlsSearchResult,
  PhoneLookupInput,
  PhoneLookupResult,
  SkipTraceInput,
  SkipTraceResult,
} from "../types/operations.js";

const SUBSCRIPTION_ID = { description: "The subscription that pays." };
const CREDIT_AMOUNT = { nullable: true, description: "Admin only: charge exactly this many credits." };

function callOptions(ctx: RequestContext): ProviderCallOptions {
  return { simulateFailure: ctx.simulateFailure, slowMs: ctx.services.config.SIMULATE_SLOW_MS };
}

@Resolver()
export class OperationsResolver {
  @Mutation(() => AiTaskResult, { description: "Runs an AI task. Priced by the `ai` estimator." })
  @Directive('@credits(type: "ai", estimator: "ai", meter: "ai")')
  async runAiTask(
    @Arg("subscriptionId", () => ID, SUBSCRIPTION_ID) _subscriptionId: string,
    @Arg("input", () => AiTaskInput, { description: "The task." }) input: AiTaskInput,
    @Arg("creditAmount", () => Int, CREDIT_AMOUNT) _creditAmount: number | null,
    @Ctx() ctx: RequestContext,
  ): Promise<AiTaskResult> {
    const output = await ctx.services.providers.runAiTask(
      { prompt: input.prompt, model: input.model ?? AiModel.SMALL, maxTokens: input.maxTokens ?? 256 },
      callOptions(ctx),
    );
    return { ...output, model: output.model as AiModel };
  }

  @Mutation(() => LeadSearchResult, { description: "Searches business leads. Priced by the `leads` estimator." })
  @Directive('@credits(type: "leads", estimator: "leads", meter: "leads")')
  async searchLeads(
    @Arg("subscriptionId", () => ID, SUBSCRIPTION_ID) _subscriptionId: string,
    @Arg("input", () => LeadSearchInput, { description: "The search." }) input: LeadSearchInput,
    @Arg("creditAmount", () => Int, CREDIT_AMOUNT) _creditAmount: number | null,
    @Ctx() ctx: RequestContext,
  ): Promise<LeadSearchResult> {
    return ctx.services.providers.searchLeads(
      { query: input.query, location: input.location ?? null, limit: input.limit ?? 25 },
      callOptions(ctx),
    );
  }

  @Mutation(() => MlsSearchResult, { description: "Searches MLS listings. Priced by the `mls` estimator." })
  @Directive('@credits(type: "leads", estimator: "mls", meter: "mls")')
  async searchMls(
    @Arg("subscriptionId", () => ID, SUBSCRIPTION_ID) _subscriptionId: string,
    @Arg("input", () => MlsSearchInput, { description: "The search." }) input: MlsSearchInput,
    @Arg("creditAmount", () => Int, CREDIT_AMOUNT) _creditAmount: number | null,
    @Ctx() ctx: RequestContext,
  ): Promise<MlsSearchResult> {
    return ctx.services.providers.searchMls(
      { area: input.area, limit: input.limit ?? 25, includeHistory: input.includeHistory ?? false },
      callOptions(ctx),
    );
  }

  @Mutation(() => HarvestResult, {
    description: "Harvests e-mail addresses and hosts of a domain from public sources. Priced by the `theharvester` estimator.",
  })
  @Directive('@credits(type: "leads", estimator: "theharvester")')
  async harvestDomain(
    @Arg("subscriptionId", () => ID, SUBSCRIPTION_ID) _subscriptionId: string,
    @Arg("input", () => HarvestInput, { description: "The domain and sources." }) input: HarvestInput,
    @Arg("creditAmount", () => Int, CREDIT_AMOUNT) _creditAmount: number | null,
    @Ctx() ctx: RequestContext,
  ): Promise<HarvestResult> {
    return ctx.services.providers.harvestDomain(
      { domain: input.domain.trim().toLowerCase(), sources: input.sources, limit: input.limit ?? 100 },
      callOptions(ctx),
    );
  }

  @Mutation(() => SkipTraceResult, { description: "Finds phones and e-mails for people at an address. Priced by the `skiptrace` estimator." })
  @Directive('@credits(type: "skiptrace", estimator: "skiptrace", meter: "skiptrace")')
  async skipTrace(
    @Arg("subscriptionId", () => ID, SUBSCRIPTION_ID) _subscriptionId: string,
    @Arg("input", () => SkipTraceInput, { description: "The people to trace." }) input: SkipTraceInput,
    @Arg("creditAmount", () => Int, CREDIT_AMOUNT) _creditAmount: number | null,
    @Ctx() ctx: RequestContext,
  ): Promise<SkipTraceResult> {
    return ctx.services.providers.skipTrace({ records: input.records }, callOptions(ctx));
  }

  @Mutation(() => PhoneLookupResult, { description: "Validates phone numbers, optionally with carrier lookup. Priced by the `phone` estimator." })
  @Directive('@credits(type: "skiptrace", estimator: "phone")')
  async lookupPhones(
    @Arg("subscriptionId", () => ID, SUBSCRIPTION_ID) _subscriptionId: string,
    @Arg("input", () => PhoneLookupInput, { description: "The numbers." }) input: PhoneLookupInput,
    @Arg("creditAmount", () => Int, CREDIT_AMOUNT) _creditAmount: number | null,
    @Ctx() ctx: RequestContext,
  ): Promise<PhoneLookupResult> {
    return ctx.services.providers.lookupPhones(
      { phones: input.phones, carrierLookup: input.carrierLookup ?? false },
      callOptions(ctx),
    );
  }
}
