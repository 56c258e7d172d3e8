/**
 * An estimator prices one call of a metered field from its arguments. It is a plain typed function
 * plus the zod schema of the arguments it reads: the schema is the field's input validation (the
 * charge wrapper runs it before anything is charged) and `estimate` stays a pure function of valid
 * input, tested on its own.
 */
import type { z } from "zod";

export interface Estimator<Args = any> {
  /** The name a @credits(estimator: …) directive uses. */
  readonly name: string;
  /** One line for the catalog: how the price is computed. */
  readonly description: string;
  /** Validates the field's arguments (the whole args object: subscriptionId, input, creditAmount …). */
  readonly args: z.ZodType<Args>;
  /** Credits for one call with valid arguments. May return a fraction or throw: the caller normalises. */
  estimate(args: Args): number;
}

export function defineEstimator<Args>(estimator: Estimator<Args>): Estimator<Args> {
  return Object.freeze(estimator);
}
