/**
 * The charge path's hooks in Apollo's request pipeline (DESIGN.md, "Architecture"):
 * - once the operation is resolved and every plugin let it through, its upfront-priced metered fields
 *   are held together; a refusal answers instead of execution (data: null, one error per refused
 *   field or short balance);
 * - once the result is known, every hold of the request settles;
 * - then extensions.credits is written from what the charge path recorded (it computes nothing).
 */
import { HeaderMap, type ApolloServerPlugin } from "@apollo/server";
import type { GraphQLFormattedError } from "graphql";
import type { RefusedCall } from "../../credits/charge-phases.js";
import type { OperationCharges } from "../../credits/operation-charges.js";
import { InternalError } from "../../errors/errors.js";
import { contextIsRequest, type RequestOf } from "../../credits/credits-request.js";
import { formatError } from "../format-error.js";

/** Generic over the host's context: `requestOf` finds the credits state of a request (convention 10). */
export function creditsExtensionPlugin<TContext extends object>(
  charges: OperationCharges,
  requestOf: RequestOf = contextIsRequest,
): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        // After every plugin's didResolveOperation passed (they run concurrently, and one may still
        // refuse the request), and before execution: nothing is held for a request refused earlier.
        async responseForOperation({ schema, document, operation, request, contextValue: context }) {
          if (!operation) return null;
          const contextValue = await requestOf(context);
          let refused: RefusedCall[] | undefined;
          try {
            refused = await charges.holdOperation({ schema, document, operation, variables: request.variables, ctx: contextValue });
          } catch (err) {
            contextValue.logger.error({ err }, "holding the operation's metered fields failed");
            refused = [{ error: new InternalError("The hold failed", { cause: err }), path: [] }];
          }
          if (!refused) return null;
          return {
            http: { status: undefined, headers: new HeaderMap() },
            body: { kind: "single", singleResult: { data: null, errors: refused.map(formatRefusal) } },
          };
        },
        async willSendResponse({ response, contextValue: context }) {
          if (response.body.kind !== "single") return;
          const contextValue = await requestOf(context);
          const result = response.body.singleResult;
          await charges.settle(contextValue, result.data);
          const credits = contextValue.charges.toExtension();
          if (!credits) return;
          result.extensions = { ...(result.extensions ?? {}), credits };
        },
      };
    },
  };
}

function formatRefusal({ error, path }: RefusedCall): GraphQLFormattedError {
  const formatted = error.toJSON();
  return formatError(path.length > 0 ? { ...formatted, path } : formatted, error);
}
