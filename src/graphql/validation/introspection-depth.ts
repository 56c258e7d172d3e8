/**
 * Introspection held to the depth standard introspection needs (DESIGN.md, "Rate limits"). The
 * depth limit exempts `__schema`/`__type` (GraphQL Armor's rule ignores introspection, since the
 * standard query is deeper than most operations), so without this rule `ofType` could be nested 40
 * deep, or `fields { type { fields { type … } } }` without end: cheap to send, costly to answer.
 *
 * What the standard query needs (graphql's getIntrospectionQuery, which GraphiQL and codegen send):
 * a chain of 9 `ofType` (typeDepth), and a type reached through at most two type-valued fields
 * (`types` then `fields.type`). The limits leave headroom above both.
 */
import { GraphQLError, Kind, type ASTVisitor, type SelectionSetNode, type ValidationContext, type ValidationRule } from "graphql";

/** Longest run of nested `ofType` (getIntrospectionQuery's typeDepth defaults to 9; older clients send 7). */
export const MAX_OF_TYPE_CHAIN = 12;
/** Most type-valued fields (other than ofType) on one path: `__type`/`types` then `type`/`interfaces`/… */
export const MAX_TYPE_HOPS = 3;
/** Fields visited (fragments expanded) before an introspection selection counts as too large to check. */
const VISIT_BUDGET = 20_000;

/** Fields of the introspection types whose value is a __Type (ofType counted apart). */
const TYPE_VALUED = new Set(["types", "queryType", "mutationType", "subscriptionType", "type", "interfaces", "possibleTypes"]);

interface Walk {
  readonly context: ValidationContext;
  budget: number;
  problem?: string;
}

function walk(selectionSet: SelectionSetNode, walkState: Walk, ofTypeRun: number, typeHops: number, fragments: ReadonlySet<string>): void {
  for (const selection of selectionSet.selections) {
    if (walkState.problem) return;
    if (--walkState.budget < 0) {
      walkState.problem = "The introspection query is too large to answer: ask for less.";
      return;
    }
    if (selection.kind === Kind.FIELD) {
      const name = selection.name.value;
      let run = 0;
      let hops = typeHops;
      if (name === "ofType") run = ofTypeRun + 1;
      else if (TYPE_VALUED.has(name)) hops++;
      if (run > MAX_OF_TYPE_CHAIN) {
        walkState.problem = `Introspection nests ofType more than ${MAX_OF_TYPE_CHAIN} deep: the standard introspection query needs 9 at most.`;
        return;
      }
      if (hops > MAX_TYPE_HOPS) {
        walkState.problem = `Introspection goes from type to type more than ${MAX_TYPE_HOPS} levels deep: the standard introspection query needs 2.`;
        return;
      }
      if (selection.selectionSet) walk(selection.selectionSet, walkState, run, hops, fragments);
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      walk(selection.selectionSet, walkState, ofTypeRun, typeHops, fragments);
    } else {
      const name = selection.name.value;
      const fragment = walkState.context.getFragment(name);
      // A cycle is refused by graphql's own NoFragmentCycles rule; here it only must not loop.
      if (!fragment || fragments.has(name)) continue;
      walk(fragment.selectionSet, walkState, ofTypeRun, typeHops, new Set(fragments).add(name));
    }
  }
}

/** Root selections (through root fragments) that are introspection fields, with the hops they start at. */
function introspectionRoots(selectionSet: SelectionSetNode, context: ValidationContext, seen: Set<string>, found: { set: SelectionSetNode; hops: number }[]): void {
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      const name = selection.name.value;
      if ((name === "__schema" || name === "__type") && selection.selectionSet) {
        found.push({ set: selection.selectionSet, hops: name === "__type" ? 1 : 0 });
      }
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      introspectionRoots(selection.selectionSet, context, seen, found);
    } else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment = context.getFragment(selection.name.value);
      if (fragment) introspectionRoots(fragment.selectionSet, context, seen, found);
    }
  }
}

export const introspectionDepthRule: ValidationRule = (context: ValidationContext): ASTVisitor => ({
  OperationDefinition(node) {
    const roots: { set: SelectionSetNode; hops: number }[] = [];
    introspectionRoots(node.selectionSet, context, new Set(), roots);
    const state: Walk = { context, budget: VISIT_BUDGET };
    for (const root of roots) walk(root.set, state, 0, root.hops, new Set());
    if (state.problem) context.reportError(new GraphQLError(state.problem, { nodes: [node] }));
    return false;
  },
});
