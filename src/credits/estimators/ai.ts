/**
 * Prices runAiTask: tokens in (about 4 characters each) plus tokens out, per started 1,000 tokens,
 * five times as much on the LARGE model.
 */
import { z } from "zod";
import { defineEstimator } from "./estimator.js";
import { characterCount, expects, fieldArgs, inputObject, intBetweenOr, says } from "./fields.js";

export const AI_PROMPT_MAX_CHARS = 100_000;
export const AI_MAX_TOKENS_LIMIT = 8_192;
export const AI_DEFAULT_MAX_TOKENS = 256;
export const AI_LARGE_MULTIPLIER = 5;

const prompt = z
  .string(expects("a string"))
  .refine(
    (text: string): boolean => {
      const length = characterCount(text);
      return length >= 1 && length <= AI_PROMPT_MAX_CHARS;
    },
    says(`must be between 1 and ${AI_PROMPT_MAX_CHARS.toLocaleString("en-US")} characters`),
  );

const model = z
  .enum(["SMALL", "LARGE"], expects("SMALL or LARGE"))
  .nullish()
  .transform((value: "SMALL" | "LARGE" | null | undefined): "SMALL" | "LARGE" => value ?? "SMALL");

const aiArgs = fieldArgs(
  inputObject({
    prompt,
    model,
    maxTokens: intBetweenOr(1, AI_MAX_TOKENS_LIMIT, AI_DEFAULT_MAX_TOKENS),
  }),
);

export type AiArgs = z.output<typeof aiArgs>;

export const aiEstimator = defineEstimator<AiArgs>({
  name: "ai",
  description:
    "ceil((ceil(prompt characters / 4) + maxTokens) / 1000) credits, ×5 for the LARGE model",
  args: aiArgs,
  estimate({ input }: AiArgs): number {
    return aiCredits(input.prompt, input.maxTokens, input.model);
  },
});

/**
 * The AI price formula, shared by the estimator (tokens out = maxTokens, the hold) and the meter
 * (tokens out = tokensUsed, the actual cost), so the two can only differ in what the model produced.
 */
export function aiCredits(prompt: string, outputTokens: number, model: "SMALL" | "LARGE"): number {
  const promptTokens = Math.ceil(characterCount(prompt) / 4);
  const thousands = Math.ceil((promptTokens + outputTokens) / 1000);
  return thousands * (model === "LARGE" ? AI_LARGE_MULTIPLIER : 1);
}
