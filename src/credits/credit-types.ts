/** The credit types this server meters. A @credits directive naming any other type is a startup error. */
export interface CreditTypeDefinition {
  readonly name: string;
  readonly description: string;
}

export const CREDIT_TYPES: readonly CreditTypeDefinition[] = Object.freeze([
  { name: "ai", description: "AI tasks: prompts and generated tokens." },
  { name: "leads", description: "Lead, MLS and domain searches." },
  { name: "skiptrace", description: "Skip traces and phone lookups." },
]);

export const CREDIT_TYPE_NAMES: ReadonlySet<string> = new Set(CREDIT_TYPES.map((t) => t.name));

export function isCreditType(name: unknown): name is string {
  return typeof name === "string" && CREDIT_TYPE_NAMES.has(name);
}
