/**
 * graphql's "Did you mean …?" hints name fields, arguments, input fields and enum values of the
 * schema. In production, where introspection is off, they would spell the schema out to anyone who
 * guesses near a name, so they are cut from every error message: Apollo's
 * hideSchemaDetailsFromClientErrors covers only the request's validation errors, not the coercion of
 * its variables ("Field "promt" is not defined by type "AiTaskInput". Did you mean "prompt"?") nor
 * the documents creditPreview validates.
 */
import type { GraphQLFormattedError } from "graphql";

/** Every hint in a message: a hint ends at its question mark (no GraphQL name holds one). */
const SCHEMA_HINT = / ?Did you mean [^?]*\?/g;

export function withoutSchemaHints(message: string): string {
  return message.replace(SCHEMA_HINT, "");
}

type FormatError = (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;

/** `format`, with the hints cut from the message it answers. */
export function hidingSchemaHints(format: FormatError): FormatError {
  return (formatted, error) => {
    const answer = format(formatted, error);
    return { ...answer, message: withoutSchemaHints(answer.message) };
  };
}
