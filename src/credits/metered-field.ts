/** A field marked @credits, read and validated once when the schema is transformed. */
import type { Estimator } from "./estimators/estimator.js";
import type { Meter } from "./meters/meter.js";

export interface MeteredField {
  /** Schema coordinate, e.g. "Mutation.runAiTask". */
  readonly coordinate: string;
  readonly typeName: string;
  readonly fieldName: string;
  readonly creditType: string;
  /** Fixed price; also the fallback when the estimator fails. */
  readonly amount: number | undefined;
  readonly estimator: Estimator | undefined;
  /** Measures the actual cost from the result; without one, a call costs what was held. */
  readonly meter: Meter | undefined;
  readonly description: string | undefined;
}
