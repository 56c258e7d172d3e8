/**
 * One Apollo plugin out of several, so a host adds the credits core with one entry in `plugins`.
 * Each request hook runs the parts in order (willSendResponse: settle, then format, then status);
 * responseForOperation answers with the first part that answers. invalidRequestWasReceived (a request
 * refused before it starts) and contextCreationDidFail run every part's, in order.
 */
import type { ApolloServerPlugin, GraphQLRequestListener } from "@apollo/server";

type Listener<T extends object> = GraphQLRequestListener<T>;

export function composePlugins<TContext extends object>(parts: ApolloServerPlugin<TContext>[]): ApolloServerPlugin<TContext> {
  return {
    async serverWillStart(service) {
      for (const part of parts) await part.serverWillStart?.(service);
    },
    async invalidRequestWasReceived(request) {
      for (const part of parts) await part.invalidRequestWasReceived?.(request);
    },
    async contextCreationDidFail(failure) {
      for (const part of parts) await part.contextCreationDidFail?.(failure);
    },
    async requestDidStart(requestContext) {
      const listeners: Listener<TContext>[] = [];
      for (const part of parts) {
        const listener = await part.requestDidStart?.(requestContext);
        if (listener) listeners.push(listener);
      }
      return {
        async didResolveOperation(rc) {
          for (const l of listeners) await l.didResolveOperation?.(rc);
        },
        async responseForOperation(rc) {
          for (const l of listeners) {
            const answer = await l.responseForOperation?.(rc);
            if (answer) return answer;
          }
          return null;
        },
        async didEncounterErrors(rc) {
          for (const l of listeners) await l.didEncounterErrors?.(rc);
        },
        async willSendResponse(rc) {
          for (const l of listeners) await l.willSendResponse?.(rc);
        },
      };
    },
  };
}
