/**
 * Builds the schema from the type-graphql resolvers with our directives declared, and prints it with
 * directive uses (graphql's printSchema drops them, and clients read @credits from the SDL).
 */
import "reflect-metadata";
import { specifiedDirectives, type GraphQLSchema } from "graphql";
import { printSchemaWithDirectives } from "@graphql-tools/utils";
import { buildSchemaSync } from "type-graphql";
import { creditsDirective } from "../credits/credits-directive.js";
import { rateLimitDirective } from "../ratelimit/rate-limit-directive.js";
import { RESOLVERS } from "./resolvers/index.js";

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
  });
}

export function printSchemaSdl(schema: GraphQLSchema): string {
  return (
    "# Emitted from the code by `npm run schema:emit`; do not edit. A test fails when it differs.\n\n" +
    printSchemaWithDirectives(schema) +
    "\n"
  );
}
