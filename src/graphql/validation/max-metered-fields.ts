/**
 * A validation rule that refuses an operation selecting more than `max` metered (@credits) fields.
 * Each selection is one charge, so the count is what the operation would debit: aliases of the
 * same field count separately (`a: runAiTask … b: runAiTask …` is two charges), and a fragment
 * counts every time it is spread. The rule runs with the rest of GraphQL validation, so a refused
 * operation has run nothing and been charged nothing.
 */
import {
  GraphQLError,
  type ASTVisitor,
  type OperationDefinitionNode,
  type ValidationContext,
  type ValidationRule,
} from "graphql";

export interface MaxMeteredFieldsOptions {
  /** Schema coordinates of the metered fields, e.g. "Mutation.runAiTask". */
  meteredCoordinates: ReadonlySet<string>;
  /** Metered selections allowed in one operation. */
  max: number;
}

/** What one operation or fragment selects directly: its metered fields and the fragments it spreads. */
interface SelectionTally {
  metered: number;
  spreads: string[];
}

export function maxMeteredFieldsRule(options: MaxMeteredFieldsOptions): ValidationRule {
  return (context: ValidationContext): ASTVisitor => {
    const operations: { name: string | undefined; node: OperationDefinitionNode; tally: SelectionTally }[] = [];
    const fragments = new Map<string, SelectionTally>();
    let current: SelectionTally | undefined;

    /** Metered selections of a fragment, its spreads included; a cycle (reported by graphql's own rule) adds nothing. */
    function fragmentTotal(name: string, visiting: Set<string>, memo: Map<string, number>): number {
      const known = memo.get(name);
      if (known !== undefined) return known;
      const tally = fragments.get(name);
      if (!tally || visiting.has(name)) return 0;
      visiting.add(name);
      let total = tally.metered;
      for (const spread of tally.spreads) total += fragmentTotal(spread, visiting, memo);
      visiting.delete(name);
      memo.set(name, total);
      return total;
    }

    return {
      OperationDefinition: {
        enter(node) {
          current = { metered: 0, spreads: [] };
          operations.push({ name: node.name?.value, node, tally: current });
        },
        leave() {
          current = undefined;
        },
      },
      FragmentDefinition: {
        enter(node) {
          current = { metered: 0, spreads: [] };
          fragments.set(node.name.value, current);
        },
        leave() {
          current = undefined;
        },
      },
      Field(node) {
        // validate() visits with TypeInfo, so the parent type is known here (undefined for an
        // unknown type, which graphql's own rules report).
        const parent = context.getParentType();
        if (current && parent && options.meteredCoordinates.has(`${parent.name}.${node.name.value}`)) current.metered++;
      },
      FragmentSpread(node) {
        current?.spreads.push(node.name.value);
      },
      Document: {
        leave() {
          const memo = new Map<string, number>();
          for (const operation of operations) {
            let total = operation.tally.metered;
            for (const spread of operation.tally.spreads) total += fragmentTotal(spread, new Set(), memo);
            if (total > options.max) {
              const which = operation.name ? `Operation ${operation.name}` : "The operation";
              context.reportError(
                new GraphQLError(
                  `${which} selects ${total} metered fields; at most ${options.max} are allowed in one operation. ` +
                    `Split it into several requests.`,
                  { nodes: [operation.node] },
                ),
              );
            }
          }
        },
      },
    };
  };
}
