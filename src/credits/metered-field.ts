/** A field marked @credits, read and validated once when the schema is transformed. */
import type { Estimator } from "./estimators/estimator.js";

export interface MeteredField {
  /** Schema coordinate, e.g. "Mutation.runAiTask". */
  readonly coordinate: string;
  readonly typeName: string;
  readonly fieldName: string;
  readonly creditType: string;
  /** Fixed price; also the fallback when the estimator fails. */
  readonly amount: number | undefined;
  readonly estimator: Estimator | undefined;
  readonly description: string | undefined;
}
