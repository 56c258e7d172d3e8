/**
 * The closed error-code set without a host's own formatError (DESIGN.md, "Errors"): once Apollo has
 * formatted the response's errors, each is formatted again by this server's formatError, so codes of
 * the closed set are kept (stack traces dropped), GraphQL's own request errors become BAD_USER_INPUT,
 * and everything else is masked as INTERNAL_SERVER_ERROR. Run before the errors plugin sets the status.
 */
import type { ApolloServerPlugin } from "@apollo/server";
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import { formatError } from "../graphql/format-error.js";

/** The formatted error as an error again: formatError judges it by its code, as it would the original. */
function reformat(formatted: GraphQLFormattedError): GraphQLFormattedError {
  const error = new GraphQLError(formatted.message, { extensions: formatted.extensions });
  return formatError(formatted, error);
}

export function formatErrorsPlugin<TContext extends object>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== "single") return;
          const result = response.body.singleResult;
          if (result.errors && result.errors.length > 0) result.errors = result.errors.map(reformat);
        },
      };
    },
  };
}
