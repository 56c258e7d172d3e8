/** Measures searchMls: per started page of 25 listings found, twice as much with price history. */
import { MLS_PAGE_SIZE, type MlsArgs } from "../estimators/mls.js";
import { defineMeter } from "./meter.js";

export const mlsMeter = defineMeter<MlsArgs, { listings: readonly unknown[] }>({
  name: "mls",
  description: "ceil(len(listings) / 25) credits, ×2 with includeHistory",
  measure({ input }, result) {
    return Math.ceil(result.listings.length / MLS_PAGE_SIZE) * (input.includeHistory ? 2 : 1);
  },
});
