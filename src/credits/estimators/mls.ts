/** Prices searchMls: per started page of 25 listings, twice as much with price history. */
import type { z } from "zod";
import { defineEstimator } from "./estimator.js";
import { booleanOr, fieldArgs, inputObject, intBetweenOr, requiredText } from "./fields.js";

export const MLS_MAX_LIMIT = 500;
export const MLS_DEFAULT_LIMIT = 25;
export const MLS_PAGE_SIZE = 25;

const mlsArgs = fieldArgs(
  inputObject({
    area: requiredText(200),
    limit: intBetweenOr(1, MLS_MAX_LIMIT, MLS_DEFAULT_LIMIT),
    includeHistory: booleanOr(false),
  }),
);

export type MlsArgs = z.output<typeof mlsArgs>;

export const mlsEstimator = defineEstimator<MlsArgs>({
  name: "mls",
  description: "ceil(limit / 25) credits, ×2 with includeHistory",
  args: mlsArgs,
  estimate({ input }: MlsArgs): number {
    return Math.ceil(input.limit / MLS_PAGE_SIZE) * (input.includeHistory ? 2 : 1);
  },
});
