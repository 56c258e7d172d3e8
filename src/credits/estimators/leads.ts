/** Prices searchLeads: one credit per lead asked for. */
import type { z } from "zod";
import { defineEstimator } from "./estimator.js";
import { fieldArgs, inputObject, intBetweenOr, optionalText, requiredText } from "./fields.js";

export const LEADS_MAX_LIMIT = 500;
export const LEADS_DEFAULT_LIMIT = 25;

const leadsArgs = fieldArgs(
  inputObject({
    query: requiredText(500),
    location: optionalText(200),
    limit: intBetweenOr(1, LEADS_MAX_LIMIT, LEADS_DEFAULT_LIMIT),
  }),
);

export type LeadsArgs = z.output<typeof leadsArgs>;

export const leadsEstimator = defineEstimator<LeadsArgs>({
  name: "leads",
  description: "limit credits (one per lead asked for)",
  args: leadsArgs,
  estimate({ input }: LeadsArgs): number {
    return input.limit;
  },
});
