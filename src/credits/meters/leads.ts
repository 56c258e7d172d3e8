/** Measures searchLeads: one credit per lead found. */
import { defineMeter } from "./meter.js";

export const leadsMeter = defineMeter<unknown, { leads: readonly unknown[] }>({
  name: "leads",
  description: "len(leads) credits (one per lead found)",
  measure(_args, result) {
    return result.leads.length;
  },
});
