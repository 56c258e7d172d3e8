/**
 * The @rateLimit directive's definition, with graphql-rate-limit's arguments and meaning. Its
 * schema transformer lives beside it (see the rate-limit module's factory).
 */
import { DirectiveLocation, GraphQLDirective, GraphQLInt, GraphQLList, GraphQLString } from "graphql";

export const RATE_LIMIT_DIRECTIVE_NAME = "rateLimit";

export const rateLimitDirective = new GraphQLDirective({
  name: RATE_LIMIT_DIRECTIVE_NAME,
  description: "Limits how often one caller may call the field within a time window.",
  locations: [DirectiveLocation.FIELD_DEFINITION],
  args: {
    max: { type: GraphQLInt, description: "Calls allowed per window." },
    window: { type: GraphQLString, description: 'Window length, e.g. "1m", "10s".' },
    message: { type: GraphQLString, description: "Message of the RATE_LIMITED error." },
    identityArgs: { type: new GraphQLList(GraphQLString), description: 'Arguments that make separate counters, e.g. ["subscriptionId"].' },
    arrayLengthField: { type: GraphQLString, description: "Counts the length of this list argument instead of one per call." },
  },
});
