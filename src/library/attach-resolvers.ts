/**
 * Resolvers for a schema built from SDL with graphql's own buildSchema, so an SDL host needs no
 * further package: `{ Type: { field: resolver } }`, the field-resolver part of Apollo's and
 * graphql-tools' resolver maps. Only object types' field functions: custom scalars, enum value maps,
 * `__resolveType`, `__isTypeOf` and `{ resolve }` objects are refused, naming what was given; a
 * schema that needs them is built with graphql-tools' makeExecutableSchema and passed to transform.
 */
import type { GraphQLFieldResolver, GraphQLSchema } from "graphql";
import { MapperKind, mapSchema } from "@graphql-tools/utils";

export type ResolverMap = Readonly<Record<string, Readonly<Record<string, GraphQLFieldResolver<any, any, any>>>>>;

export function attachResolvers(schema: GraphQLSchema, resolvers: ResolverMap): GraphQLSchema {
  for (const [typeName, fields] of Object.entries(resolvers)) {
    const type = schema.getType(typeName);
    if (!type || !("getFields" in type)) throw new Error(`resolvers: the schema has no object type ${typeName}`);
    for (const fieldName of Object.keys(fields)) {
      if (!(fieldName in type.getFields())) throw new Error(`resolvers: ${typeName} has no field ${fieldName}`);
    }
  }
  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName) => {
      const resolve = resolvers[typeName]?.[fieldName] as GraphQLFieldResolver<any, any, any> | undefined;
      return resolve ? { ...fieldConfig, resolve } : fieldConfig;
    },
  });
}
