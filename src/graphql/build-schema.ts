/**
 * Builds the schema from the type-graphql resolvers with our directives declared, and prints it with
 * directive uses (graphql's printSchema drops them, and clients read @credits from the SDL).
 */
import "reflect-metadata";
import { specifiedDirectives, type GraphQLSchema } from "graphql";
import { printSchemaWithDirectives } from "@graphql-tools/utils";
import { buildSchemaSync, type BuildSchemaOptions } from "type-graphql";
import { creditsDirective } from "../credits/credits-directive.js";
import { rateLimitDirective } from "../ratelimit/rate-limit-directive.js";
import { DateTimeIsoScalar } from "./date-time-scalar.js";
import { RESOLVERS } from "./resolvers/index.js";

/**
 * type-graphql insists on a pubSub once the schema has a subscription, even when every subscription
 * opens its own stream through the `subscribe` option, as creditBalanceChanged does (it authorizes
 * the caller first, then follows the app's live-balance hub). Nothing publishes through this one.
 */
const SUBSCRIBE_OPTION_ONLY: NonNullable<BuildSchemaOptions["pubSub"]> = {
  publish() {
    throw new Error("subscriptions here are fed by their subscribe option, not by publishing");
  },
  subscribe() {
    throw new Error("subscriptions here open their streams through their subscribe option");
  },
};

/**
 * The schema as the resolvers declare it, before the credits and rate-limit transformers wrap anything.
 * `extraResolvers` adds resolver classes that are not part of the public schema (the benchmark's
 * fields, passed by bench/bench-main.ts through createApp's options); the emitted schema never passes any.
 */
export function buildBaseSchema(extraResolvers: readonly Function[] = []): GraphQLSchema {
  return buildSchemaSync({
    resolvers: [...RESOLVERS, ...extraResolvers],
    // type-graphql replaces graphql's default directives with this list: without the specified ones
    // (@skip, @include, @deprecated, …) clients could not use @skip/@include at all.
    directives: [...specifiedDirectives, creditsDirective, rateLimitDirective],
    // Input is validated by the charge path (estimator schemas) and by each resolver, not by class-validator.
    validate: false,
    emitSchemaFile: false,
    pubSub: SUBSCRIBE_OPTION_ONLY,
    // Dates before year 1 refused as bad input (date-time-scalar.ts), not left to PostgreSQL.
    scalarsMap: [{ type: Date, scalar: DateTimeIsoScalar }],
  });
}

export function printSchemaSdl(schema: GraphQLSchema): string {
  return (
    "# Emitted from the code by `npm run schema:emit`; do not edit. A test fails when it differs.\n\n" +
    printSchemaWithDirectives(schema) +
    "\n"
  );
}
