/**
 * Zod building blocks for the estimators' argument schemas. Their messages are shown to API users
 * as BAD_USER_INPUT errors, so every message starts with the full path of the offending field
 * ("input.limit must be between 1 and 500", "input.records[3].zip must be at most 100 characters").
 *
 * The path is read when zod finalises the issue, which it does after the issue has bubbled up to
 * the root of the parsed object, so one helper serves a field at any depth (array items included).
 */
import { z } from "zod";

/** The raw issue zod hands to an `error` function. */
type RawIssue = z.core.$ZodRawIssue;

/** A path as users read it in the GraphQL arguments: `input.records[3].firstName`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out === "" ? String(key) : `.${String(key)}`;
  }
  return out === "" ? "arguments" : out;
}

/** The full path of the field an issue is about. */
export function issuePath(issue: RawIssue): string {
  return formatPath(issue.path ?? []);
}

/** An `error` option whose message is `<field path> <text>`. */
export function says(text: string): { error: (issue: RawIssue) => string } {
  return { error: (issue: RawIssue): string => `${issuePath(issue)} ${text}` };
}

/** The message for a value that is missing or of the wrong GraphQL type. */
export function expects(expected: string): { error: (issue: RawIssue) => string } {
  return {
    error: (issue: RawIssue): string =>
      issue.input === undefined || issue.input === null
        ? `${issuePath(issue)} is required`
        : `${issuePath(issue)} must be ${expected}`,
  };
}

/** Thousands separators make bounds like 100,000 readable in messages. */
function n(value: number): string {
  return value.toLocaleString("en-US");
}

/** A whole number in [min, max]. */
export function intBetween(min: number, max: number): z.ZodNumber {
  const range = says(`must be between ${n(min)} and ${n(max)}`);
  return z
    .number(expects("a whole number"))
    .int(says("must be a whole number"))
    .min(min, range)
    .max(max, range);
}

/**
 * A whole number in [min, max] that takes `fallback` when absent. GraphQL applies the input
 * default only when the field is omitted; an explicit `null` reaches us as null, and pricing it as
 * the default is the only sensible reading.
 */
export function intBetweenOr(min: number, max: number, fallback: number): z.ZodType<number, number | null | undefined> {
  return intBetween(min, max)
    .nullish()
    .transform((value: number | null | undefined): number => value ?? fallback);
}

/** A boolean that takes `fallback` when absent or null (see `intBetweenOr`). */
export function booleanOr(fallback: boolean): z.ZodType<boolean, boolean | null | undefined> {
  return z
    .boolean(expects("true or false"))
    .nullish()
    .transform((value: boolean | null | undefined): boolean => value ?? fallback);
}

/** A string that is not blank, trimmed, of at most `max` characters after trimming. */
export function requiredText(max: number): z.ZodString {
  return z
    .string(expects("a string"))
    .trim()
    .min(1, says("must not be empty"))
    .max(max, says(`must be at most ${n(max)} characters`));
}

/** An optional string of at most `max` characters (trimmed); null and absent stay as they are. */
export function optionalText(max: number): z.ZodOptional<z.ZodNullable<z.ZodString>> {
  return z
    .string(expects("a string"))
    .trim()
    .max(max, says(`must be at most ${n(max)} characters`))
    .nullish();
}

/** A list of `min`–`max` items. */
export function listOf<T extends z.ZodType>(item: T, min: number, max: number): z.ZodArray<T> {
  const size = says(`must have between ${n(min)} and ${n(max)} items`);
  return z.array(item, expects("a list")).min(min, size).max(max, size);
}

/** An input object: a required GraphQL input whose own fields are checked by `shape`. */
export function inputObject<Shape extends z.ZodRawShape>(shape: Shape): z.ZodObject<Shape> {
  return z.object(shape, expects("an object"));
}

/**
 * The whole field arguments of a metered mutation: `input` is checked here, the other arguments
 * (subscriptionId, creditAmount) pass through untouched because the charge wrapper checks them.
 */
export function fieldArgs<Input extends z.ZodType>(input: Input): z.ZodObject<{ input: Input }, z.core.$loose> {
  return z.object({ input }, expects("an object")).loose();
}

/**
 * Characters as a user counts them: Unicode code points, not UTF-16 units, so an emoji is one
 * character (as `len()` was in the original Python service) in both the bounds and the price.
 */
export function characterCount(text: string): number {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}
