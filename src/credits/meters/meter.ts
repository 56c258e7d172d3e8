/**
 * A meter measures what one call of a metered field really cost, from its (validated) arguments and
 * its result: the call settles at max(1, min(actual, held)) and the rest of the hold is released
 * (DESIGN.md, "The charge path", step 8). Like an estimator it is a plain typed function, registered
 * by name and tested on its own; it may return a fraction or throw, and the caller normalises.
 */
export interface Meter<Args = any, Result = any> {
  /** The name a @credits(meter: …) directive uses. */
  readonly name: string;
  /** One line for the catalog: how the actual cost is measured. */
  readonly description: string;
  /** Credits the call actually used, before the floor of 1 and the cap at the hold. */
  measure(args: Args, result: Result): number;
}

export function defineMeter<Args, Result>(meter: Meter<Args, Result>): Meter<Args, Result> {
  return Object.freeze(meter);
}
