/** Public price lists: generated from the schema's own @credits uses, so a new metered field appears by itself. */
import { Ctx, Query, Resolver } from "type-graphql";
import { CREDIT_TYPES } from "../../credits/credit-types.js";
import { refuseFailedCredentials } from "../../credits/credits-request.js";
import type { RequestContext } from "../context.js";
import { CreditTypeInfo, MeteredOperation } from "../types/catalog.js";

@Resolver()
export class CatalogResolver {
  @Query(() => [CreditTypeInfo], { description: "The credit types this server meters. Needs no token; a token that fails verification is refused (401)." })
  creditTypes(@Ctx() ctx: RequestContext): CreditTypeInfo[] {
    refuseFailedCredentials(ctx);
    return CREDIT_TYPES.map((t) => ({ name: t.name, description: t.description }));
  }

  @Query(() => [MeteredOperation], { description: "Every metered field and how it is priced. Needs no token; a token that fails verification is refused (401)." })
  creditCatalog(@Ctx() ctx: RequestContext): MeteredOperation[] {
    refuseFailedCredentials(ctx);
    return ctx.services.meteredFields.map((f) => ({
      operation: f.coordinate,
      type: f.creditType,
      amount: f.amount ?? null,
      estimator: f.estimator?.name ?? null,
      meter: f.meter?.name ?? null,
      description: [f.description, f.estimator && `Holds ${f.estimator.description}.`, f.meter && `Settles at ${f.meter.description}.`].filter(Boolean).join(" ") || null,
    }));
  }
}
