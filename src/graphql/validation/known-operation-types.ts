/**
 * Refuses an operation whose root type the schema does not have (`subscription { … }` here, where
 * there are no subscriptions). graphql 16 lets such a document through validation and fails it in
 * execute() with an error that carries no code, which would be masked as a 500; graphql 17 checks
 * this during validation, as this rule does.
 */
import { GraphQLError, type ASTVisitor, type ValidationContext, type ValidationRule } from "graphql";

export const knownOperationTypesRule: ValidationRule = (context: ValidationContext): ASTVisitor => ({
  OperationDefinition(node) {
    if (context.getSchema().getRootType(node.operation)) return;
    context.reportError(
      new GraphQLError(`This server has no ${node.operation} operations: send a query or a mutation.`, { nodes: [node] }),
    );
  },
});
