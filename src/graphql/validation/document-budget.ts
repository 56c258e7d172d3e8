/**
 * A document's budget, checked in one linear walk before graphql validates it.
 *
 * graphql-js's validation can cost far more than a document's size suggests, and our own limits
 * (operation-limits.ts) run alongside graphql's rules inside validate(), so they refuse only after
 * that work is done. Measured on graphql 16, well under MAX_DOCUMENT_TOKENS:
 * - OverlappingFieldsCanBeMergedRule compares every pair of fields with the same response name in a
 *   selection set (those of inline fragments and spread fragments included): `{ creditTypes{name} }`
 *   repeated 300 times took 100–400 ms to validate; 1,200 times ran into graphql's own work budget
 *   ("Validation aborted.") after 200–600 ms;
 * - every rule walks every operation: 1,600 `query qN{__typename}` in one document took 100–300 ms;
 * - OverlappingFieldsCanBeMergedRule also compares fragments pairwise, whatever their response names:
 *   400 fragments of one distinct alias each, spread together (or each spreading the next), took
 *   100–150 ms; 900 ran into graphql's work budget after about 200 ms.
 * A request is admitted before its token is checked (REQUEST_LIMIT counts per address), so that CPU
 * is spent without a token. The walk here refuses such documents first, over every transport: HTTP
 * through refusedDocumentsPlugin, the WebSocket and creditPreview through validateDocument (see
 * subscription-root-conditions.ts for how a refusal reaches validate()).
 *
 * The limits are constants, not settings: they bound graphql's work, which no deployment wants more
 * of, and they are far above what a client of this API writes.
 * - MAX_SAME_RESPONSE_NAME (20): n fields of one response name are n·(n−1)/2 comparisons, each
 *   again through the fields' sub-selections; 20 is 190 where 300 was 44,850. Nested repeats still
 *   multiply (20 × 20 × 4 took 30–50 ms), and graphql's own work budget still stops the worst of
 *   them. A client that wants a field twice, with other arguments, aliases it; no operation of this
 *   API needs one response name 20 times (MAX_METERED_FIELDS is 20 too).
 * - MAX_OPERATIONS (50): a request runs one operation, so more than one in a document only serves
 *   clients that send a whole file of operations; 50 of them validate in a few tens of milliseconds.
 * - MAX_FRAGMENTS (100): fragment definitions in one document. 100 fragments spread together
 *   validate in about 15 ms; clients write a handful per operation (codegen documents one per
 *   component that needs one).
 * - MAX_FIELD_SELECTIONS (2,000): the whole document's field selections, each fragment definition's
 *   once. MAX_ALIASES (50) and MAX_QUERY_DEPTH keep what runs small; this keeps what is validated
 *   small (2,000 fields validate in a few tens of milliseconds), whatever shape would multiply it.
 *
 * Counting follows graphql's own collection of a selection set's fields: its fields, those of its
 * inline fragments (flattened into it), and those of each named fragment spread in it, once per
 * selection set however often it is spread there, with that fragment's own spreads (memoized: a
 * fragment's counts are made once, however many selection sets spread it). A fragment reached along
 * two paths counts on each; cycles are cut where they close (graphql's NoFragmentCyclesRule reports
 * them); a fragment that is not defined counts nothing (KnownFragmentNamesRule reports it).
 */
import { GraphQLError, Kind, type DocumentNode, type FragmentDefinitionNode, type OperationDefinitionNode, type SelectionSetNode } from "graphql";

/** Fields with one response name in one selection set, counting what its fragments bring in. */
export const MAX_SAME_RESPONSE_NAME = 20;
/** Operations in one document. */
export const MAX_OPERATIONS = 50;
/** Fragment definitions in one document. */
export const MAX_FRAGMENTS = 100;
/** Field selections in the whole document, each fragment definition's counted once. */
export const MAX_FIELD_SELECTIONS = 2_000;

/** The budget's refusal of `document`, or undefined when it is within every limit. Linear in the document's size. */
export function documentBudgetError(document: DocumentNode): GraphQLError | undefined {
  const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  if (operations.length > MAX_OPERATIONS) {
    return new GraphQLError(
      `The document has ${operations.length} operations; at most ${MAX_OPERATIONS} are accepted in one document: send only the operation you run (a request runs one).`,
      { nodes: operations[MAX_OPERATIONS] },
    );
  }
  const fragments = document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION);
  if (fragments.length > MAX_FRAGMENTS) {
    return new GraphQLError(
      `The document defines ${fragments.length} fragments; at most ${MAX_FRAGMENTS} are accepted in one document: send only the fragments the operation spreads.`,
      { nodes: fragments[MAX_FRAGMENTS] },
    );
  }
  const walk = new BudgetWalk(document);
  // A field repeated in one selection set is the more precise refusal of the two.
  const repeated = walk.sameNameError();
  if (repeated || walk.fieldSelections <= MAX_FIELD_SELECTIONS) return repeated;
  return new GraphQLError(
    `The document selects ${walk.fieldSelections} fields; at most ${MAX_FIELD_SELECTIONS} are accepted in one document (a fragment's fields count once): split it into several requests.`,
  );
}

/** The size up to which an `extra` grown by small sums is copied rather than compacted (see Counts). */
const EXTRA_LIMIT = 64;

/**
 * Response-name counts. A fragment's counts are shared by every selection set that spreads it, and
 * the sum of a few fragments' counts by every selection set that spreads them together, so a sum
 * leaves its two sides as they were, with one exception: at the last read of a count set whose maps
 * nothing else holds (`reads`, `ownsBase`), the sum takes its maps, so that a chain of fragments,
 * each spreading the next, costs no copies.
 *
 * Otherwise a sum is the larger side's `base`, shared, under a new `extra`: the larger side's extra
 * and the smaller side, copied. Copying the larger side's extra is kept cheap: once its copies have
 * cost as much as its base, the larger side is flattened into one map, once; and an extra grown by
 * many small sums (past EXTRA_LIMIT, and more than twice its last sum) is compacted, once: the same
 * counts over the flattened ancestor where the small sums began (itself shared by every other
 * descendant), with only the small sums' counts in the extra. A sum so costs about its smaller side.
 */
class Counts {
  private static made = 0;
  readonly id = Counts.made++;
  /** Sums already made with this count set as their larger side (see sumOfSpreads). */
  sums: Map<Counts, Counts> | undefined;
  /** Sums still to read this count set: never fewer than there will be (Infinity: not counted). */
  reads = 0;
  /** Entries of `extra` copied into sums made from this count set. */
  private copied = 0;
  /** The same counts in one map, or with a compacted extra (see startOfSum). */
  private flat: Counts | undefined;
  private compacted: Counts | undefined;

  constructor(
    readonly base: Map<string, number>,
    /** Held by this count set alone. */
    readonly extra: Map<string, number> | undefined,
    /** Whether base is held by this count set alone. */
    public ownsBase: boolean,
    /** The highest count and a name that has it. */
    readonly max: number,
    readonly maxName: string,
    /** A sum over the parent's base: the parent and the smaller side added to it. */
    readonly parent?: Counts,
    readonly edge?: Counts,
  ) {}

  /** base and extra: at least the number of distinct names. */
  get size(): number {
    return this.base.size + (this.extra?.size ?? 0);
  }

  count(name: string): number {
    return (this.base.get(name) ?? 0) + (this.extra?.get(name) ?? 0);
  }

  /** Each (count, name) of base, then of extra: a name in both comes twice, its counts to be added. */
  forEach(each: (count: number, name: string) => void): void {
    this.base.forEach(each);
    this.extra?.forEach(each);
  }

  /** The same counts in one map (made once). */
  flattened(): Counts {
    if (!this.extra) return this;
    if (!this.flat) {
      const base = new Map(this.base);
      addInto(base, this.extra);
      this.flat = unchanging(new Counts(base, undefined, false, this.max, this.maxName));
    }
    return this.flat;
  }

  /** What a sum with this count set as its larger side starts from: this, or the same counts flattened or compacted (once). */
  startOfSum(): Counts {
    if (this.compacted) return this.compacted;
    if (!this.extra) return this;
    this.copied += this.extra.size;
    if (this.copied > this.base.size) return (this.compacted = this.flattened());
    if (this.extra.size <= Math.max(EXTRA_LIMIT, 2 * (this.edge?.size ?? 0))) return this;
    // Back to the ancestor where the small sums began: at least this count set's own last sum.
    const edges: Counts[] = [];
    let ancestor: Counts = this;
    for (let size = 0; ancestor.parent && ancestor.edge && (edges.length === 0 || size + ancestor.edge.size <= EXTRA_LIMIT / 2); ancestor = ancestor.parent) {
      size += ancestor.edge.size;
      edges.push(ancestor.edge);
    }
    if (ancestor === this) return (this.compacted = this.flattened());
    const extra = new Map<string, number>();
    for (const edge of edges) edge.forEach((count, name) => extra.set(name, (extra.get(name) ?? 0) + count));
    return (this.compacted = unchanging(new Counts(ancestor.flattened().base, extra, false, this.max, this.maxName)));
  }
}

/** A count set that no sum may take over: shared, or held as a parent or edge. */
function unchanging(counts: Counts): Counts {
  counts.reads = Infinity;
  counts.ownsBase = false;
  return counts;
}

const NO_COUNTS = unchanging(new Counts(new Map(), undefined, false, 0, ""));

function addInto(target: Map<string, number>, counts: ReadonlyMap<string, number>): void {
  counts.forEach((count, name) => target.set(name, (target.get(name) ?? 0) + count));
}

/** a + b, one read of each: in time about the smaller side's size (see Counts). */
function sum(a: Counts, b: Counts): Counts {
  a.reads--;
  b.reads--;
  if (b.size > a.size) [a, b] = [b, a];
  if (b.size === 0) return a;
  let base: Map<string, number>;
  let extra: Map<string, number> | undefined;
  let ownsBase = false;
  let parent: Counts | undefined;
  // (A fragment that only spreads another has that one's counts: both may be spread together.)
  const last = a.reads === 0 && a !== b;
  if (last && a.ownsBase) {
    // a's last read, and its maps are its own: they become the sum's.
    base = a.base;
    if (a.extra) addInto(base, a.extra);
    ownsBase = true;
  } else if (last && (a.extra?.size ?? 0) + b.size <= EXTRA_LIMIT) {
    // a's last read: its extra becomes the sum's, over the base it shares.
    base = a.base;
    extra = a.extra ?? new Map();
  } else {
    parent = unchanging(a);
    const onto = a.startOfSum();
    base = onto.base;
    extra = new Map(onto.extra);
    onto.ownsBase = false;
    unchanging(b);
  }
  const target = extra ?? base;
  let { max, maxName } = a;
  b.forEach((count, name) => {
    const added = (target.get(name) ?? 0) + count;
    target.set(name, added);
    const total = target === base ? added : added + (base.get(name) ?? 0);
    if (total > max) (max = total), (maxName = name);
  });
  return new Counts(base, extra, ownsBase, max, maxName, parent, parent && b);
}

/** A selection set as graphql collects its fields: its own (inline fragments flattened into it) and the fragments it spreads. */
interface Level {
  readonly definition: OperationDefinitionNode | FragmentDefinitionNode;
  readonly selectionSet: SelectionSetNode;
  readonly own: Counts;
  readonly spreads: readonly string[];
}

/** Thrown inside the walk to stop it at the first selection set over the limit. */
class OverLimit {
  constructor(readonly error: GraphQLError) {}
}

class BudgetWalk {
  fieldSelections = 0;
  /** Every selection set where graphql collects fields, in document order. */
  private readonly levels: Level[] = [];
  /** Each fragment's definition: the last of a name, as graphql's getFragment finds it. */
  private readonly fragments = new Map<string, Level>();
  private readonly totals = new Map<string, Counts>();
  /** How many selection sets spread each fragment: the reads its counts will have. */
  private readonly uses = new Map<string, number>();

  constructor(document: DocumentNode) {
    const pending: SelectionSetNode[] = [];
    for (const definition of document.definitions) {
      if (definition.kind !== Kind.OPERATION_DEFINITION && definition.kind !== Kind.FRAGMENT_DEFINITION) continue;
      pending.push(definition.selectionSet);
      while (pending.length > 0) {
        const level = this.collect(definition, pending.pop()!, pending);
        this.levels.push(level);
        for (const spread of level.spreads) this.uses.set(spread, (this.uses.get(spread) ?? 0) + 1);
        if (definition.kind === Kind.FRAGMENT_DEFINITION && level.selectionSet === definition.selectionSet) {
          this.fragments.set(definition.name.value, level);
        }
      }
    }
  }

  /** One selection set's own counts and spreads; its fields' selection sets go on `pending`, to come next in document order. */
  private collect(definition: Level["definition"], selectionSet: SelectionSetNode, pending: SelectionSetNode[]): Level {
    const own = new Map<string, number>();
    const spreads = new Set<string>();
    const inner: SelectionSetNode[] = [];
    let max = 0;
    let maxName = "";
    const sets = [selectionSet];
    while (sets.length > 0) {
      for (const selection of sets.pop()!.selections) {
        if (selection.kind === Kind.FIELD) {
          this.fieldSelections++;
          const name = selection.alias?.value ?? selection.name.value;
          const count = (own.get(name) ?? 0) + 1;
          own.set(name, count);
          if (count > max) (max = count), (maxName = name);
          if (selection.selectionSet) inner.push(selection.selectionSet);
        } else if (selection.kind === Kind.INLINE_FRAGMENT) {
          sets.push(selection.selectionSet);
        } else {
          spreads.add(selection.name.value);
        }
      }
    }
    for (let i = inner.length - 1; i >= 0; i--) pending.push(inner[i]);
    return { definition, selectionSet, own: new Counts(own, undefined, true, max, maxName), spreads: [...spreads] };
  }

  /** The first selection set with more than MAX_SAME_RESPONSE_NAME fields of one response name. */
  sameNameError(): GraphQLError | undefined {
    try {
      for (const level of this.levels) {
        const { definition } = level;
        if (definition.kind === Kind.FRAGMENT_DEFINITION && this.fragments.get(definition.name.value) === level) {
          this.totalOf(definition.name.value);
          continue;
        }
        const spreads = this.sumOfSpreads(level, (name) => this.totalOf(name));
        // Only the highest count is wanted here: the smaller side is looked up in the larger.
        const [smaller, larger] = level.own.size <= spreads.size ? [level.own, spreads] : [spreads, level.own];
        let { max, maxName } = spreads.max > level.own.max ? spreads : level.own;
        smaller.forEach((_, name) => {
          const total = smaller.count(name) + larger.count(name);
          if (total > max) (max = total), (maxName = name);
        });
        this.checkCount(level, max, maxName);
      }
      return undefined;
    } catch (err) {
      if (err instanceof OverLimit) return err.error;
      throw err;
    }
  }

  private checkCount(level: Level, count: number, name: string): void {
    if (count <= MAX_SAME_RESPONSE_NAME) return;
    const { definition } = level;
    const which = definition.kind === Kind.FRAGMENT_DEFINITION ? `The fragment "${definition.name.value}"` : definition.name ? `The operation "${definition.name.value}"` : "The operation";
    throw new OverLimit(
      new GraphQLError(
        `${which} selects "${name}" ${count} times in one selection set (fragments included); at most ${MAX_SAME_RESPONSE_NAME} are accepted: select a field once (or use aliases).`,
        { nodes: level.selectionSet },
      ),
    );
  }

  /**
   * The counts of the fragments a selection set spreads, each once. Largest first, so that the sums
   * of the same large fragments are made once (Counts.sums) and shared by the selection sets that
   * spread them together.
   */
  private sumOfSpreads(level: Level, totalOf: (name: string) => Counts | undefined): Counts {
    const spread: Counts[] = [];
    for (const name of level.spreads) {
      const total = totalOf(name);
      if (total) spread.push(total);
    }
    if (spread.length === 0) return NO_COUNTS;
    spread.sort((a, b) => b.size - a.size || a.id - b.id);
    let counts = spread[0];
    for (let i = 1; i < spread.length; i++) {
      let next = counts.sums?.get(spread[i]);
      if (!next) {
        // Shared by every selection set that spreads these fragments: never taken over.
        next = unchanging(sum(counts, spread[i]));
        (counts.sums ??= new Map()).set(spread[i], next);
      }
      counts = next;
    }
    return counts;
  }

  /**
   * A fragment's counts, with those of the fragments it spreads, made once (depth first, without
   * recursion) and checked as they are made. A spread that would close a cycle counts nothing; an
   * undefined fragment is undefined.
   */
  private totalOf(name: string): Counts | undefined {
    const known = this.totals.get(name);
    if (known) return known;
    const level = this.fragments.get(name);
    if (!level) return undefined;
    const open = new Set<string>([name]);
    const stack = [{ name, level, next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top.next < top.level.spreads.length) {
        const child = top.level.spreads[top.next++];
        const childLevel = this.fragments.get(child);
        if (!childLevel || open.has(child) || this.totals.has(child)) continue;
        open.add(child);
        stack.push({ name: child, level: childLevel, next: 0 });
        continue;
      }
      stack.pop();
      open.delete(top.name);
      // Each spread is made by now, or still open: one that closes a cycle, counted as nothing.
      const spreads = this.sumOfSpreads(top.level, (spread) => (open.has(spread) ? undefined : this.totals.get(spread)));
      top.level.own.reads = 1;
      const total = sum(spreads, top.level.own);
      total.reads += this.uses.get(top.name) ?? 0;
      this.totals.set(top.name, total);
      this.checkCount(top.level, total.max, total.maxName);
    }
    return this.totals.get(name);
  }
}
