/**
 * The `DateTimeISO` scalar, as type-graphql's default (graphql-scalars' GraphQLDateTimeISO: same name,
 * description and serialization), but refusing instants before year 1 at UTC.
 *
 * Why: RFC 3339 allows year 0000, and "0001-01-01T00:00:00+01:00" is year 0 at UTC; JavaScript's Date
 * takes both, but node-postgres writes year 0 as "0000-…", which PostgreSQL refuses ("date/time field
 * value out of range"), so a ledger or usage filter with such a date answered 500. Refused here, it is
 * a BAD_USER_INPUT like any other malformed date. graphql-scalars already refuses years past 9999.
 */
import { GraphQLError, GraphQLScalarType, type ValueNode } from "graphql";
import { GraphQLDateTimeISO } from "graphql-scalars";

/** 0001-01-01T00:00:00Z: the first instant PostgreSQL's timestamptz takes in the form node-postgres writes. */
const EARLIEST = Date.parse("0001-01-01T00:00:00Z");

function withinRange(date: Date, shown: unknown): Date {
  if (date.getTime() < EARLIEST) {
    throw new GraphQLError(`DateTime ${JSON.stringify(shown)} is before 0001-01-01T00:00:00Z, the earliest date taken`);
  }
  return date;
}

export const DateTimeIsoScalar = new GraphQLScalarType<Date, string>({
  name: GraphQLDateTimeISO.name,
  description: GraphQLDateTimeISO.description,
  specifiedByURL: GraphQLDateTimeISO.specifiedByURL,
  extensions: GraphQLDateTimeISO.extensions,
  serialize: (value) => GraphQLDateTimeISO.serialize(value),
  parseValue: (value) => withinRange(GraphQLDateTimeISO.parseValue(value), value),
  parseLiteral: (ast: ValueNode, variables) => withinRange(GraphQLDateTimeISO.parseLiteral(ast, variables), "value" in ast ? ast.value : ast),
});
