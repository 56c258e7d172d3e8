/** Writes extensions.credits from what the charge wrapper recorded. It computes nothing itself. */
import type { ApolloServerPlugin } from "@apollo/server";
import type { RequestContext } from "../context.js";

export function creditsExtensionPlugin(): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response, contextValue }) {
          if (response.body.kind !== "single") return;
          const credits = contextValue.charges.toExtension();
          if (!credits) return;
          const result = response.body.singleResult;
          result.extensions = { ...(result.extensions ?? {}), credits };
        },
      };
    },
  };
}
