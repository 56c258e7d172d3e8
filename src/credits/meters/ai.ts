/** Measures runAiTask: the estimator's formula with the tokens the model really produced. */
import { aiCredits, type AiArgs } from "../estimators/ai.js";
import { defineMeter } from "./meter.js";

export const aiMeter = defineMeter<AiArgs, { tokensUsed: number }>({
  name: "ai",
  description: "ceil((ceil(prompt characters / 4) + tokensUsed) / 1000) credits, ×5 for the LARGE model",
  measure({ input }, result) {
    return aiCredits(input.prompt, result.tokensUsed, input.model);
  },
});
