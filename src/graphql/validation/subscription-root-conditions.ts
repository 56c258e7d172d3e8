/**
 * A subscription's root field may not carry `@skip` or `@include`, directly or through a fragment at
 * its root: the GraphQL specification's "Single Root Field" rule, as its current draft words it and
 * graphql-js 17 checks it. graphql 16, which this server runs, does not, and fails on it instead:
 * - with a variable in the condition, its own SingleFieldSubscriptionsRule throws out of validate()
 *   ("… was provided the variable "$f" which was not provided a runtime value"): a 500 over HTTP and
 *   from creditPreview, an INTERNAL_SERVER_ERROR over the WebSocket;
 * - with a literal that leaves the field out, its subscribe throws a TypeError that closed the whole
 *   WebSocket with 4500 (every other subscription on it too) and printed a stack.
 * A subscription always has exactly one root field, so the condition has nothing to decide: refused
 * as a validation error, for that operation alone, over every transport.
 *
 * graphql's rule throws before a rule of ours could report, so such a document is never validated as
 * it is: `documentToValidate` gives validate() a stand-in that graphql's rules pass, and
 * `refusedDocumentRule` reports the original's refusal when it meets the stand-in. The WebSocket's
 * checks and creditPreview validate through `validateDocument`; HTTP gets the stand-in from a plugin
 * at Apollo's validationDidStart (an error thrown from a hook there would be a 500).
 *
 * A document over its budget (document-budget.ts: too many operations, field selections, or fields
 * of one response name in a selection set), whose validation would cost far more than its size, is
 * refused the same way: the budget is walked before validate(), and validate() gets a stand-in.
 */
import type { ApolloServerPlugin } from "@apollo/server";
import {
  GraphQLError,
  Kind,
  parse,
  validate,
  type ASTVisitor,
  type DirectiveNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from "graphql";
import { documentBudgetError } from "./document-budget.js";

const CONDITIONS = new Set(["skip", "include"]);

function conditionOf(directives: readonly DirectiveNode[] | undefined): DirectiveNode | undefined {
  return directives?.find((directive) => CONDITIONS.has(directive.name.value));
}

/** The first @skip or @include at the root of `selectionSet`, looking through fragments at the root (each once). */
function rootCondition(selectionSet: SelectionSetNode, fragments: ReadonlyMap<string, FragmentDefinitionNode>, seen: Set<string>): DirectiveNode | undefined {
  for (const selection of selectionSet.selections) {
    const own = conditionOf(selection.directives);
    if (own) return own;
    let inner: SelectionSetNode | undefined;
    if (selection.kind === Kind.INLINE_FRAGMENT) inner = selection.selectionSet;
    else if (selection.kind === Kind.FRAGMENT_SPREAD && !seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      inner = fragments.get(selection.name.value)?.selectionSet;
    }
    const found = inner && rootCondition(inner, fragments, seen);
    if (found) return found;
  }
  return undefined;
}

/** The refusal of the first subscription operation of `document` with a condition on its root field, if any. */
export function subscriptionRootConditionError(document: DocumentNode): GraphQLError | undefined {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION || definition.operation !== "subscription") continue;
    const condition = rootCondition(definition.selectionSet, fragments, new Set());
    if (!condition) continue;
    const name = definition.name ? ` "${definition.name.value}"` : "";
    return new GraphQLError(
      `Subscription${name} must not use "@${condition.name.value}" on its root field: a subscription has exactly one root field, always selected.`,
      { nodes: condition },
    );
  }
  return undefined;
}

/** Stand-ins given to validate(), each with the refusal of the document it stands for. */
const refusalsOfStandIns = new WeakMap<DocumentNode, GraphQLError>();

/** Why `document` is refused before graphql validates it: a condition on a subscription's root field, or its budget. */
function refusalBeforeValidation(document: DocumentNode): GraphQLError | undefined {
  // A document without a subscription operation is not walked for root conditions.
  const hasSubscription = document.definitions.some((d) => d.kind === Kind.OPERATION_DEFINITION && d.operation === "subscription");
  return (hasSubscription ? subscriptionRootConditionError(document) : undefined) ?? documentBudgetError(document);
}

/**
 * What validate() should be given for `document`: the document itself, or, when it is refused before
 * validation (refusalBeforeValidation), a stand-in (`{ __typename }`, which graphql's rules pass)
 * whose validation reports that refusal through refusedDocumentRule. Linear in the document's size.
 */
export function documentToValidate(document: DocumentNode): DocumentNode {
  const refusal = refusalBeforeValidation(document);
  if (!refusal) return document;
  const standIn = parse("{ __typename }", { noLocation: true });
  refusalsOfStandIns.set(standIn, refusal);
  return standIn;
}

/** Reports the refusal a stand-in stands for (see documentToValidate); passes every other document. */
export function refusedDocumentRule(context: ValidationContext): ASTVisitor {
  const refusal = refusalsOfStandIns.get(context.getDocument());
  return refusal ? { Document: () => context.reportError(refusal) } : {};
}

/**
 * graphql's validate() for callers that run it themselves (the WebSocket's checks, creditPreview):
 * with the stand-in, and with the rule that reports it whether or not `rules` has it.
 */
export function validateDocument(schema: GraphQLSchema, document: DocumentNode, rules: readonly ValidationRule[]): readonly GraphQLError[] {
  const withRule = rules.includes(refusedDocumentRule) ? rules : [...rules, refusedDocumentRule];
  return validate(schema, documentToValidate(document), withRule);
}

/**
 * The stand-in for HTTP, where Apollo runs validate() on its request context's document right after
 * this hook. Every request that reaches validation is looked at (Apollo skips validation for a
 * document it has already validated and cached, so the walk is paid once per new document).
 */
export function refusedDocumentsPlugin<Ctx extends object>(): ApolloServerPlugin<Ctx> {
  return {
    async requestDidStart() {
      return {
        async validationDidStart(requestContext) {
          // Apollo types the document as read-only; it reads it back for validate() after this hook.
          (requestContext as { document: DocumentNode }).document = documentToValidate(requestContext.document);
        },
      };
    },
  };
}
