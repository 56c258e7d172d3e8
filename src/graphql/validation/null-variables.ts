/**
 * Refuses, before anything runs, a variable sent as `null` where the document uses it in a place that
 * needs a value. GraphQL lets a nullable variable with a default stand where a non-null value is
 * required (`$s: ID = "…"` for `subscriptionId: ID!`, `$c: Boolean = true` for `@include(if:)`): the
 * default covers a variable left out, but an explicit `null` passes coercion and is refused only when
 * execution reaches that field or directive. By then the fields before it have run: a metered one
 * was held, ran its provider call and was refunded as not delivered, an unmetered one committed its
 * change behind `data: null`, and the answer was a masked 500 for what is the client's mistake
 * (`creditPreview` of the same request answered 400). Found by an outside fuzzing audit.
 *
 * Only the selected operation and the fragments it spreads are looked at: another operation of the
 * document may use a variable of the same name. A usage under `@skip(if: true)` is refused too: the
 * request names a null where a value is required either way.
 */
import type { ApolloServerPlugin } from "@apollo/server";
import {
  GraphQLError,
  Kind,
  TypeInfo,
  isNonNullType,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from "graphql";
import { BadUserInputError } from "../../errors/errors.js";

/** The operation's nullable variables that the request sends as an explicit `null`. */
function variablesSentAsNull(operation: OperationDefinitionNode, variables: Readonly<Record<string, unknown>>): Map<string, string> {
  const sentAsNull = new Map<string, string>();
  for (const definition of operation.variableDefinitions ?? []) {
    const name = definition.variable.name.value;
    // A non-null variable sent as null is refused by coercion already; one left out takes its default.
    if (definition.type.kind === Kind.NON_NULL_TYPE || !Object.hasOwn(variables, name) || variables[name] !== null) continue;
    sentAsNull.set(name, printType(definition));
  }
  return sentAsNull;
}

function printType(definition: NonNullable<OperationDefinitionNode["variableDefinitions"]>[number]): string {
  let type = definition.type;
  let wrap = (inner: string) => inner;
  while (type.kind !== Kind.NAMED_TYPE) {
    const outer = wrap;
    if (type.kind === Kind.LIST_TYPE) wrap = (inner) => outer(`[${inner}]`);
    else wrap = (inner) => outer(`${inner}!`);
    type = type.type;
  }
  return wrap(type.name.value);
}

/** The operation and every fragment it spreads, directly or through other fragments. */
function reachableDefinitions(document: DocumentNode, operation: OperationDefinitionNode): (OperationDefinitionNode | FragmentDefinitionNode)[] {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const reached: (OperationDefinitionNode | FragmentDefinitionNode)[] = [operation];
  const seen = new Set<string>();
  for (let i = 0; i < reached.length; i++) {
    visit(reached[i], {
      FragmentSpread(spread) {
        const name = spread.name.value;
        const fragment = fragments.get(name);
        if (fragment && !seen.has(name)) {
          seen.add(name);
          reached.push(fragment);
        }
      },
    });
  }
  return reached;
}

/** One error per variable sent as `null` and used where a value is required; none in the usual case. */
export function nullVariableErrors(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | undefined,
): GraphQLError[] {
  if (!variables) return [];
  const sentAsNull = variablesSentAsNull(operation, variables);
  if (sentAsNull.size === 0) return [];
  const refused = new Map<string, GraphQLError>();
  for (const definition of reachableDefinitions(document, operation)) {
    const typeInfo = new TypeInfo(schema);
    visit(
      definition,
      visitWithTypeInfo(typeInfo, {
        Variable(node) {
          const name = node.name.value;
          const declared = sentAsNull.get(name);
          const expected = typeInfo.getInputType();
          if (declared === undefined || refused.has(name) || !expected || !isNonNullType(expected)) return;
          refused.set(
            name,
            new BadUserInputError(
              `Variable "$${name}" of type "${declared}" was sent as null, but it is used where a value is required ("${String(expected)}"): ` +
                "send a value, or leave the variable out to use its default.",
              `variables.${name}`,
            ),
          );
        },
      }),
    );
  }
  return [...refused.values()];
}

export function refuseNullVariablesPlugin<Ctx extends object>(): ApolloServerPlugin<Ctx> {
  return {
    async requestDidStart() {
      return {
        // After the variables are coerced, before anything is held or executes.
        async didResolveOperation({ schema, document, operation, request }) {
          if (!operation) return;
          const [first] = nullVariableErrors(schema, document, operation, request.variables);
          if (first) throw first;
        },
      };
    },
  };
}
