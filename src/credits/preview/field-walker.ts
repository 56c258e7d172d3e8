/**
 * Finds the metered fields an operation selects, the way graphql-js would collect them when it runs
 * the operation: aliases give the response path, fragments and inline fragments are followed, and
 * @skip/@include decide per request. The walk itself does not depend on variables, so its result
 * (every *possible* metered field with the conditions that guard it) is cached per document and
 * operation; `runningFields` then applies one request's variables in a single cheap pass.
 *
 * Fields with the same response path are merged by graphql-js and run once, with the arguments of
 * the first of them in document order; `runningFields` keeps exactly that one.
 */
import {
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  getDirectiveValues,
  getNamedType,
  getNullableType,
  isListType,
  isCompositeType,
  isObjectType,
  isInterfaceType,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionNode,
  type SelectionSetNode,
  type ValueNode,
} from "graphql";
import { BadUserInputError } from "../../errors/errors.js";
import type { MeteredField } from "../metered-field.js";

/** One place in the document where a metered field is selected. */
export interface MeteredFieldOccurrence {
  /** Response keys from the root, aliases included, e.g. ["cheap"] for `cheap: runAiTask(…)`. */
  readonly path: readonly string[];
  /** The path and parent type as one string: occurrences with equal keys are merged into one call. */
  readonly mergeKey: string;
  readonly node: FieldNode;
  readonly fieldDef: GraphQLField<unknown, unknown>;
  readonly metered: MeteredField;
  /** The selections on the way here (the field itself included) that carry @skip or @include. */
  readonly conditions: readonly SelectionNode[];
  /** Unique among all occurrences the process has planned: names this place in price memos. */
  readonly id: number;
  /** The `subscriptionId` argument as written (a variable or a literal), when the field has one. */
  readonly subscriptionIdNode: ValueNode | undefined;
  /** Variables the other arguments use: with the literals, their values decide the price. */
  readonly priceVariables: readonly string[];
  /**
   * Reached through a list field: it runs once per item, so it cannot be held before the operation
   * runs (the charge path holds each call when it is reached).
   */
  readonly throughList: boolean;
}

let nextOccurrenceId = 1;

/** Names of the variables a value uses, anywhere inside lists and objects. */
function collectVariables(value: ValueNode, into: Set<string>): void {
  switch (value.kind) {
    case Kind.VARIABLE:
      into.add(value.name.value);
      break;
    case Kind.LIST:
      for (const item of value.values) collectVariables(item, into);
      break;
    case Kind.OBJECT:
      for (const field of value.fields) collectVariables(field.value, into);
      break;
  }
}

function priceInputsOf(node: FieldNode): { subscriptionIdNode: ValueNode | undefined; priceVariables: string[] } {
  let subscriptionIdNode: ValueNode | undefined;
  const variables = new Set<string>();
  for (const argument of node.arguments ?? []) {
    if (argument.name.value === "subscriptionId") subscriptionIdNode = argument.value;
    else collectVariables(argument.value, variables);
  }
  return { subscriptionIdNode, priceVariables: [...variables].sort() };
}

/**
 * A bound on how many selections one walk visits. Fragments can make a short document expand
 * enormously; graphql-js would refuse nothing, but a preview must not be a way to burn CPU.
 */
export const MAX_WALKED_SELECTIONS = 20_000;

/** `Type.field` → MeteredField, as the preview looks fields up. */
export type MeteredFieldIndex = ReadonlyMap<string, MeteredField>;

export function indexMeteredFields(fields: readonly MeteredField[]): MeteredFieldIndex {
  return new Map(fields.map((f) => [`${f.typeName}.${f.fieldName}`, f]));
}

function hasCondition(selection: SelectionNode): boolean {
  return (selection.directives ?? []).some((d) => d.name.value === "skip" || d.name.value === "include");
}

/** Every metered field `operation` may run, in document order. `document` must already be valid against `schema`. */
export function findMeteredFields(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  metered: MeteredFieldIndex,
): MeteredFieldOccurrence[] {
  const rootType = schema.getRootType(operation.operation);
  if (!rootType) return [];
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const found: MeteredFieldOccurrence[] = [];
  let visited = 0;

  /**
   * `spreadAtLevel`: fragments already spread unconditionally into this level's selection set.
   * graphql-js expands each fragment once per level; doing the same keeps fragment "bombs" linear.
   */
  function walk(
    selectionSet: SelectionSetNode,
    parentType: GraphQLCompositeType,
    path: readonly string[],
    conditions: readonly SelectionNode[],
    levelConditions: readonly SelectionNode[],
    spreadAtLevel: Set<string>,
    spreading: ReadonlySet<string>,
    inList: boolean,
  ): void {
    for (const selection of selectionSet.selections) {
      if (++visited > MAX_WALKED_SELECTIONS) {
        throw new BadUserInputError(
          `The document is too large to preview: it expands to more than ${MAX_WALKED_SELECTIONS.toLocaleString("en-US")} selections`,
        );
      }
      const guarded = hasCondition(selection) ? [...conditions, selection] : conditions;
      switch (selection.kind) {
        case Kind.FIELD: {
          // Unions have no fields but __typename; introspection fields are never metered.
          if (!isObjectType(parentType) && !isInterfaceType(parentType)) break;
          const fieldDef = parentType.getFields()[selection.name.value];
          if (!fieldDef) break;
          const fieldPath = [...path, selection.alias?.value ?? selection.name.value];
          // @credits marks fields of object types. A field selected through an interface runs on
          // whichever object type the value turns out to be, which is not known before execution.
          const meteredField = isObjectType(parentType) ? metered.get(`${parentType.name}.${fieldDef.name}`) : undefined;
          if (meteredField) {
            found.push({
              path: fieldPath,
              mergeKey: `${parentType.name}|${fieldPath.join("\u0000")}`,
              node: selection,
              fieldDef,
              metered: meteredField,
              conditions: guarded,
              id: nextOccurrenceId++,
              throughList: inList,
              ...priceInputsOf(selection),
            });
          }
          const childType = getNamedType(fieldDef.type);
          if (selection.selectionSet && isCompositeType(childType)) {
            const childInList = inList || isListType(getNullableType(fieldDef.type));
            walk(selection.selectionSet, childType, fieldPath, guarded, guarded, new Set(), spreading, childInList);
          }
          break;
        }
        case Kind.INLINE_FRAGMENT: {
          const typeName = selection.typeCondition?.name.value;
          const type = typeName ? schema.getType(typeName) : parentType;
          if (type && isCompositeType(type)) {
            walk(selection.selectionSet, type, path, guarded, levelConditions, spreadAtLevel, spreading, inList);
          }
          break;
        }
        case Kind.FRAGMENT_SPREAD: {
          const name = selection.name.value;
          const fragment = fragments.get(name);
          // Validation refuses unknown and cyclic fragments; the checks only keep the walk finite.
          if (!fragment || spreading.has(name)) break;
          const unconditional = guarded === levelConditions;
          if (unconditional && spreadAtLevel.has(name)) break;
          if (unconditional) spreadAtLevel.add(name);
          const type = schema.getType(fragment.typeCondition.name.value);
          if (type && isCompositeType(type)) {
            walk(fragment.selectionSet, type, path, guarded, levelConditions, spreadAtLevel, new Set([...spreading, name]), inList);
          }
          break;
        }
      }
    }
  }

  walk(operation.selectionSet, rootType, [], [], [], new Set(), new Set(), false);
  return found;
}

/** graphql-js's own rule: @skip(if: true) or @include(if: false) leaves a selection out. */
function included(selection: SelectionNode, variables: Record<string, unknown>): boolean {
  const skip = getDirectiveValues(GraphQLSkipDirective, selection, variables);
  if (skip?.if === true) return false;
  const include = getDirectiveValues(GraphQLIncludeDirective, selection, variables);
  return include?.if !== false;
}

/** The occurrences that run with these (coerced) variables: conditions applied, merged fields once. */
export function runningFields(
  occurrences: readonly MeteredFieldOccurrence[],
  variables: Record<string, unknown>,
): MeteredFieldOccurrence[] {
  const merged = new Set<string>();
  const running: MeteredFieldOccurrence[] = [];
  for (const occurrence of occurrences) {
    if (merged.has(occurrence.mergeKey)) continue;
    if (!occurrence.conditions.every((selection) => included(selection, variables))) continue;
    merged.add(occurrence.mergeKey);
    running.push(occurrence);
  }
  return running;
}
