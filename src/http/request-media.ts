/**
 * What a GraphQL request's headers must say before anything runs: that the client accepts a
 * GraphQL response, and that its body comes in an encoding and charset the server reads.
 *
 * Apollo Server negotiates `Accept` only after the operation has executed (runHttpQuery): a
 * metered mutation sent with `Accept: text/html` was held, run and settled, then answered 406
 * with no data, and the client paid for a result it never got. The same negotiation is made here
 * first, with Apollo's own list of media types, so whatever Apollo would answer 406 is refused
 * before the body is read and nothing is charged.
 */
import Negotiator from "negotiator";

/** Apollo Server 5's MEDIA_TYPES for a single result (ApolloServer.js, chooseContentTypeForSingleResultResponse). */
const SINGLE_RESULT_MEDIA_TYPES = [
  "application/json; charset=utf-8",
  "application/graphql-response+json; charset=utf-8",
  "application/json; callbackSpec=1.0; charset=utf-8",
];

/**
 * The media type of an answer the server writes itself, before or instead of Apollo (a 429 of
 * REQUEST_LIMIT, a 413, a malformed body): the one Apollo would have chosen for the same `Accept`,
 * so a client that accepts only application/graphql-response+json (the GraphQL-over-HTTP spec's own
 * type) gets its errors in it, and one that says nothing, or accepts anything, gets JSON.
 */
export function errorResponseMediaType(accept: string | undefined): string {
  if (!accept) return SINGLE_RESULT_MEDIA_TYPES[0];
  const chosen = new Negotiator({ headers: { accept } }).mediaType(SINGLE_RESULT_MEDIA_TYPES.slice(0, 2));
  return chosen ?? SINGLE_RESULT_MEDIA_TYPES[0];
}

export interface MediaRefusal {
  status: 406 | 415;
  message: string;
}

/** Refuses an `Accept` header that admits none of the response types (an absent one admits JSON). */
export function refuseUnacceptable(accept: string | undefined): MediaRefusal | undefined {
  if (!accept) return undefined;
  if (new Negotiator({ headers: { accept } }).mediaType(SINGLE_RESULT_MEDIA_TYPES)) return undefined;
  return {
    status: 406,
    message: "Not acceptable: the Accept header admits neither application/graphql-response+json nor application/json, the only types this server answers in. Nothing was run.",
  };
}

/**
 * Refuses a body the server would misread: compressed (read as text it is "not UTF-8", which tells
 * the client nothing) or declared in a charset other than UTF-8 (JSON's own encoding).
 */
export function refuseUnreadableBody(contentEncoding: string | undefined, contentType: string | undefined): MediaRefusal | undefined {
  const encoding = (contentEncoding ?? "").trim().toLowerCase();
  if (encoding !== "" && encoding !== "identity") {
    return { status: 415, message: `Content-Encoding ${encoding} is not supported: send the body uncompressed.` };
  }
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? "")?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    return { status: 415, message: `Charset ${charset} is not supported: send the body as UTF-8 JSON.` };
  }
  return undefined;
}
