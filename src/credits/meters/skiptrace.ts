/** Measures skipTrace: pay per hit, one credit per record that matched. */
import { defineMeter } from "./meter.js";

export const skipTraceMeter = defineMeter<unknown, { matches: readonly unknown[] }>({
  name: "skiptrace",
  description: "len(matches) credits (one per record that matched)",
  measure(_args, result) {
    return result.matches.length;
  },
});
