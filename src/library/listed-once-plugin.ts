/**
 * credits.plugin listed twice in one Apollo Server's `plugins` runs every hook twice: each metered
 * field is held twice (an outside audit: two charges for one field, one refunded as "not run", and an
 * affordable call refused 402 for the second hold). Refused at start instead.
 *
 * Apollo Server hands one object (its GraphQLServerContext) to the serverWillStart of every plugin of
 * one start, a new one per server: seeing that object twice means this plugin is listed twice on one
 * server, while two servers sharing one credits core each start with their own.
 */
import type { ApolloServerPlugin } from "@apollo/server";

export const LISTED_TWICE_MESSAGE = "credits.plugin is listed more than once in this Apollo Server's plugins: list it once";

export function listedOncePlugin<TContext extends object>(): ApolloServerPlugin<TContext> {
  const started = new WeakSet<object>();
  return {
    // Not async before the check: Apollo calls every plugin's serverWillStart in one pass, and the
    // first must have noted the server before the second looks.
    serverWillStart(service) {
      if (started.has(service)) return Promise.reject(new Error(LISTED_TWICE_MESSAGE));
      started.add(service);
      return Promise.resolve();
    },
  };
}
