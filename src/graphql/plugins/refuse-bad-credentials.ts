/**
 * A request that sends credentials which fail verification (forged, expired, mis-addressed,
 * malformed, two Authorization headers) is refused with 401 UNAUTHENTICATED as a whole, also when it
 * asks only for fields that need no token (creditTypes, creditCatalog, plans). Before, those fields
 * answered 200 as if no token had been sent (an outside authorization audit), so a client whose
 * session had expired learnt it only from the first field that needed one, and DESIGN.md's "no, bad
 * or expired token → 401" held for some fields and not others.
 *
 * No token at all stays anonymous: public fields answer, the others say UNAUTHENTICATED. A key set
 * that could not be read (JWT_JWKS_URL down) is the server's failure, not the caller's: it refuses
 * the fields that need the caller (500) and leaves public ones answering.
 */
import type { ApolloServerPlugin } from "@apollo/server";
import { UnauthenticatedError } from "../../errors/errors.js";
import type { RequestContext } from "../context.js";

export function refuseBadCredentialsPlugin(): ApolloServerPlugin<RequestContext> {
  return {
    async requestDidStart() {
      return {
        // Once the operation is known, before anything executes, is held or is charged.
        async didResolveOperation({ contextValue }) {
          if (contextValue.authError instanceof UnauthenticatedError) throw contextValue.authError;
        },
      };
    },
  };
}
