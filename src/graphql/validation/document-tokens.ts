/**
 * MAX_DOCUMENT_TOKENS (DESIGN.md, "Rate limits"): a document's lexical tokens are counted while
 * graphql parses it and the parse stops past the limit, before the tree is built, so an oversized
 * document costs a count rather than a parse. Requests (Apollo's parseOptions) and the documents
 * creditPreview prices parse with these same options, and a refusal says the same thing to both.
 */
import type { ParseOptions } from "graphql";

export function documentParseOptions(maxTokens: number): ParseOptions {
  return { maxTokens };
}

/** graphql's own refusal: "Syntax Error: Document contains more that N tokens. Parsing aborted." ("that": graphql's spelling). */
const TOO_MANY_TOKENS = /^Syntax Error: Document contains more (?:that|than) (\d+) tokens/;

/**
 * What to tell a client whose document has too many tokens, given graphql's parse error message;
 * undefined for any other parse error. graphql's wording is a syntax error, which the document is
 * not: it is too large, and the fix is to move inputs into variables.
 */
export function tooManyTokensMessage(parseErrorMessage: string): string | undefined {
  const tokens = TOO_MANY_TOKENS.exec(parseErrorMessage);
  if (!tokens) return undefined;
  return `The document has more than ${tokens[1]} lexical tokens (MAX_DOCUMENT_TOKENS): put large inputs in variables, or split the operation.`;
}
