/**
 * The page budget: the list items one operation may ask for, in all, checked before anything runs.
 *
 * Every other limit bounds the document: 50 aliases, 12 levels, 2,000 field selections. None bounds
 * what the document asks the server to produce: 50 aliases of `creditLedger(first: 1000)` are within
 * all of them and ask for 50,000 ledger entries. Measured: a 24 MB response, 5.6 s, +400 MB RSS and
 * the event loop blocked for seconds; 12–20 such requests at once timed the pool's checkouts out,
 * cost the instance its lease, and the recovery pass refunded other customers' calls still running;
 * under a 64 MB heap one request of 20 aliases killed the process in JSON.stringify. DESIGN.md bounds
 * RSS at 300 MB.
 *
 * What counts: every paged field (a field taking `first`: creditLedger, creditAlerts, subscriptions,
 * each paged by pageSize() in ledger-resolver.ts) counts its page size, `first` or the default when
 * left out, as a resolver would take it; a page inside a page counts once per item of the outer one
 * (the schema has none today: every paged field is on Query). A fragment counts each time it is
 * spread, as aliases and metered fields do (operation-limits.ts): a fragment spread twice at one
 * place counts twice where GraphQL merges the two, which overcounts a rare, odd query and never
 * undercounts. A `first` outside 1 to 1,000 counts within those bounds: the resolver refuses it in
 * its own words, which say more than this budget would.
 *
 * What does not count: lists that are not paged. Their length is the data's, not the request's, and
 * it is small: draws of a ledger entry (the grants one entry touched), balances (one per credit
 * type), plans, credit types and the catalog (configuration), usage buckets (one per group), a
 * caller's own subscriptions. The longest, BillingSubscription.grants(includeSpent: true), grows by
 * a grant or two per plan period; inside a page it is reachable only through the admins' `subscriptions`.
 * Metered fields' lists (leads, listings, matches) are bounded by their own arguments and paid for.
 *
 * Why a plugin hook and not a validation rule: `first` is usually a variable (`first: $n`), and
 * validation does not see variables. Apollo calls didResolveOperation after validation, once the
 * operation is chosen, and every plugin's hook passes before the charge path holds anything
 * (credits-extension-plugin.ts), so a refused operation has run nothing and been charged nothing.
 * Only the variables that can be a `first` (Int) are coerced, as graphql will coerce them: an
 * operation without a paged field costs one walk of its selections.
 */
import type { ApolloServerPlugin } from "@apollo/server";
import {
  Kind,
  getVariableValues,
  isInterfaceType,
  isObjectType,
  valueFromAST,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type TypeNode,
  type VariableDefinitionNode,
} from "graphql";
import { BadUserInputError } from "../../errors/errors.js";
import { LEDGER_PAGE_DEFAULT, LEDGER_PAGE_MAX } from "../resolvers/ledger-resolver.js";

/**
 * List items one operation may ask for, in all. Two full pages (2 × 1,000) of any paged field, or
 * 40 of the default 50: more than the console or any client of this API reads at once (the console
 * reads pages of 20 and 1,000). A ledger page of 1,000 with every field was about 0.5 MB of JSON
 * and 8 MB of heap while answered (50 of them: 24 MB, +400 MB RSS), so the largest operation stays
 * far below DESIGN.md's 300 MB. A client that wants more asks for the next pages with `after`.
 */
export const MAX_PAGE_ITEMS = 2_000;

/** The pages of one paged field at one page size: `pages` of `size` items each. */
interface PageGroup {
  readonly field: string;
  readonly size: number;
  pages: number;
}

/** What a selection set asks for: its page groups, by field and page size, in document order. */
type Tally = Map<string, PageGroup>;

/** Adds `times` × `source` into `target`: a selection counted once per item of the pages around it. */
function addInto(target: Tally, source: Tally, times: number): void {
  for (const [key, group] of source) {
    const known = target.get(key);
    if (known) known.pages += group.pages * times;
    else target.set(key, { field: group.field, size: group.size, pages: group.pages * times });
  }
}

function itemsOf(tally: Tally): number {
  let items = 0;
  for (const group of tally.values()) items += group.pages * group.size;
  return items;
}

/** `$n: Int` or `$n: Int!`: the only variables a `first: Int` argument can take (VariablesInAllowedPosition). */
function isIntType(type: TypeNode): boolean {
  const named = type.kind === Kind.NON_NULL_TYPE ? type.type : type;
  return named.kind === Kind.NAMED_TYPE && named.name.value === "Int";
}

/** The page size a paged field's resolver would take: pageSize()'s default when `first` is left out or null. */
function pageSizeOf(field: GraphQLField<unknown, unknown>, node: FieldNode, variables: Record<string, unknown>): number {
  const definition = field.args.find((arg) => arg.name === "first")!;
  const argument = node.arguments?.find((arg) => arg.name.value === "first");
  let first: unknown = definition.defaultValue;
  if (argument?.value.kind === Kind.VARIABLE) {
    // As graphql's getArgumentValues: a variable not given (and without a default) leaves the argument's default.
    const name = argument.value.name.value;
    if (Object.hasOwn(variables, name)) first = variables[name];
  } else if (argument) {
    first = valueFromAST(argument.value, definition.type, variables);
  }
  if (typeof first !== "number") return LEDGER_PAGE_DEFAULT;
  return Math.min(Math.max(first, 0), LEDGER_PAGE_MAX);
}

/** One operation's pages, fragments counted as they are spread (each fragment's tally made once). */
class PageWalk {
  private readonly fragments = new Map<string, FragmentDefinitionNode>();
  private readonly fragmentTallies = new Map<string, Tally>();
  /** Fragments being counted: a spread that closes a cycle counts nothing (NoFragmentCyclesRule refuses it anyway). */
  private readonly open = new Set<string>();

  constructor(
    private readonly schema: GraphQLSchema,
    document: DocumentNode,
    private readonly variables: Record<string, unknown>,
  ) {
    for (const definition of document.definitions) {
      if (definition.kind === Kind.FRAGMENT_DEFINITION) this.fragments.set(definition.name.value, definition);
    }
  }

  /**
   * The pages `selectionSet` asks for, on `type`. Recursive, like graphql's own collection of fields:
   * the document was parsed and validated within its limits (MAX_QUERY_DEPTH, the document budget)
   * before this hook, so its nesting is bounded.
   */
  tally(selectionSet: SelectionSetNode, type: GraphQLNamedType | undefined): Tally {
    const tally: Tally = new Map();
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        this.addField(tally, selection, type);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const on = selection.typeCondition ? this.schema.getType(selection.typeCondition.name.value) : type;
        addInto(tally, this.tally(selection.selectionSet, on), 1);
      } else {
        const spread = this.fragmentTally(selection.name.value);
        if (spread) addInto(tally, spread, 1);
      }
    }
    return tally;
  }

  private addField(tally: Tally, node: FieldNode, parent: GraphQLNamedType | undefined): void {
    // Introspection (`__schema`, `__type`) is bounded by introspection-depth.ts; `__typename` has no selection.
    if (!node.selectionSet || node.name.value.startsWith("__")) return;
    const field = parent && (isObjectType(parent) || isInterfaceType(parent)) ? parent.getFields()[node.name.value] : undefined;
    if (!field) return;
    const inner = this.tally(node.selectionSet, namedTypeOf(field));
    if (!field.args.some((arg) => arg.name === "first")) {
      addInto(tally, inner, 1);
      return;
    }
    const size = pageSizeOf(field, node, this.variables);
    const key = `${field.name}:${size}`;
    const group = tally.get(key);
    if (group) group.pages += 1;
    else tally.set(key, { field: field.name, size, pages: 1 });
    // What the page selects is asked for once per item of the page.
    addInto(tally, inner, size);
  }

  private fragmentTally(name: string): Tally | undefined {
    const known = this.fragmentTallies.get(name);
    if (known) return known;
    const fragment = this.fragments.get(name);
    if (!fragment || this.open.has(name)) return undefined;
    this.open.add(name);
    const tally = this.tally(fragment.selectionSet, this.schema.getType(fragment.typeCondition.name.value));
    this.open.delete(name);
    this.fragmentTallies.set(name, tally);
    return tally;
  }
}

function namedTypeOf(field: GraphQLField<unknown, unknown>): GraphQLNamedType {
  let type = field.type;
  while ("ofType" in type) type = type.ofType;
  return type;
}

const count = (n: number) => n.toLocaleString("en-US");

/** "50 creditLedger pages of 1,000", the largest groups first, at most three of them. */
function describeGroups(tally: Tally): string {
  const groups = [...tally.values()].sort((a, b) => b.pages * b.size - a.pages * a.size);
  const shown = groups.slice(0, 3).map((g) => `${count(g.pages)} ${g.field} ${g.pages === 1 ? "page" : "pages"} of ${count(g.size)}`);
  if (groups.length > shown.length) shown.push(`${groups.length - shown.length} more`);
  return shown.join(", ");
}

/**
 * Why `operation` asks for too many list items, or undefined when it is within MAX_PAGE_ITEMS.
 * `variables` are the request's, as sent: the ones a `first` can take are coerced here as graphql
 * coerces them; when they do not coerce, nothing is counted and execution refuses them in its own words.
 */
export function pageBudgetRefusal(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>>,
): string | undefined {
  const tally = pageTally(schema, document, operation, variables);
  const items = tally ? itemsOf(tally) : 0;
  if (tally === undefined || items <= MAX_PAGE_ITEMS) return undefined;
  const which = operation.name ? `Operation ${operation.name.value}` : "The operation";
  return (
    `${which} asks for ${count(items)} list items in all (${describeGroups(tally)}); ` +
    `at most ${count(MAX_PAGE_ITEMS)} are answered per request: ask for fewer, or page with \`after\`.`
  );
}

/** The paged fields `operation` asks for, or undefined when the variables a `first` can take do not coerce. */
function pageTally(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>>,
): Tally | undefined {
  const intVariables: VariableDefinitionNode[] = (operation.variableDefinitions ?? []).filter((d) => isIntType(d.type));
  const coerced = getVariableValues(schema, intVariables, variables, { maxErrors: 1 });
  if (coerced.errors) return undefined;
  return new PageWalk(schema, document, coerced.coerced).tally(operation.selectionSet, schema.getRootType(operation.operation) ?? undefined);
}

/** How many list items `operation` asks for in all, counted as the budget counts them (0 when its variables do not coerce). */
export function operationPageItems(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>>,
): number {
  const tally = pageTally(schema, document, operation, variables);
  return tally ? itemsOf(tally) : 0;
}

/** Refuses an operation over the page budget with 400 BAD_USER_INPUT, before the charge path or any resolver runs. */
export function pageBudgetPlugin<Ctx extends object>(): ApolloServerPlugin<Ctx> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request }) {
          if (!operation) return;
          const refusal = pageBudgetRefusal(schema, document, operation, request.variables ?? {});
          if (refusal) throw new BadUserInputError(refusal);
        },
      };
    },
  };
}
