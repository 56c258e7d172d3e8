/**
 * Refuses a subscription operation sent over HTTP. Subscriptions (creditBalanceChanged) run over
 * WebSocket with graphql-ws on the same /graphql path (DESIGN.md, "Live balance"); Apollo Server
 * serves only HTTP, and given a subscription it would run the root field's resolver once as if it
 * were a query, with no event: a TypeError, masked as a 500. Sending one here is the client's
 * mistake, so it is answered 400 BAD_USER_INPUT with what to do instead (DESIGN.md, "Errors").
 *
 * A plugin, not a validation rule: the WebSocket server validates with the same rules, and there a
 * subscription is exactly what is wanted. Apollo calls didResolveOperation once the document is
 * parsed and validated and its operation chosen, before anything executes, so no resolver runs.
 */
import type { ApolloServerPlugin, BaseContext } from "@apollo/server";
import type { OperationDefinitionNode } from "graphql";
import { BadUserInputError } from "../../errors/errors.js";

export const SUBSCRIPTION_OVER_HTTP =
  "Subscriptions are not served over HTTP: open a WebSocket to /graphql with the graphql-ws protocol " +
  "(graphql-transport-ws) and subscribe there.";

const SUBSCRIPTION_WORD = /\bsubscription\b/;

function isSubscription(operation: OperationDefinitionNode | undefined): boolean {
  return operation?.operation === "subscription";
}

export function refuseHttpSubscriptionsPlugin<Ctx extends BaseContext>(): ApolloServerPlugin<Ctx> {
  return {
    async requestDidStart({ request }) {
      // A document without the word "subscription" (subscriptionId does not count) holds none: such
      // requests, nearly all, get no listener at all. A persisted query sent by hash alone has no
      // text yet, so it is looked at.
      if (request.query !== undefined && !SUBSCRIPTION_WORD.test(request.query)) return;
      return {
        async didResolveOperation({ operation }) {
          if (!isSubscription(operation)) return;
          // A client's mistake: logged at info, without a stack, as every coded error is (errors-plugin.ts).
          throw new BadUserInputError(SUBSCRIPTION_OVER_HTTP);
        },
      };
    },
  };
}
