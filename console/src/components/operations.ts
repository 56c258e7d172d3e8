/**
 * The metered operations' full names (schema coordinates such as `Mutation.lookupPhones`), read once
 * per page load from `creditCatalog`, and what an operation typed into a filter means: the ledger
 * records (and filters on) the full name, but people type `lookupPhones`, or `LookupPhones`.
 */
import { useEffect, useState } from "react";
import { OperationCatalogDocument } from "../generated/graphql";
import { request } from "../api/client";

let catalog: Promise<string[]> | undefined;

/** The catalog's operations, read once (a failed read is tried again by the next caller). */
function loadOperations(): Promise<string[]> {
  catalog ??= request(OperationCatalogDocument, {})
    .then((data) => [...new Set(data.creditCatalog.map((o) => o.operation))])
    .catch(() => {
      catalog = undefined;
      return [];
    });
  return catalog;
}

/** The metered operations' full names; empty until (or unless) the catalog has been read. */
export function useKnownOperations(): readonly string[] {
  const [known, setKnown] = useState<readonly string[]>([]);
  useEffect(() => {
    let live = true;
    void loadOperations().then((ops) => live && setKnown(ops));
    return () => {
      live = false;
    };
  }, []);
  return known;
}

export interface ResolvedOperation {
  /** What to filter on: a known operation's full name, or the text as typed when none matches. */
  operation: string;
  /** Other known operations the typed short name also names (`Query.x` and `Mutation.x`). */
  others: string[];
}

/**
 * Maps what was typed to a known operation's full name: the full name itself in any case
 * (`mutation.LOOKUPPHONES`), or the name without its `Mutation.` / `Query.` prefix in any case
 * (`lookupPhones`, `LookupPhones`). A short name that two operations share picks the mutation (the
 * catalog's order otherwise) and lists the others. Unknown text is kept as typed.
 */
export function resolveOperation(typed: string, known: readonly string[]): ResolvedOperation {
  const text = typed.trim();
  if (!text || known.includes(text)) return { operation: text, others: [] };
  const lower = text.toLowerCase();
  const full = known.find((op) => op.toLowerCase() === lower);
  if (full) return { operation: full, others: [] };
  if (text.includes(".")) return { operation: text, others: [] };
  const named = known
    .filter((op) => op.slice(op.lastIndexOf(".") + 1).toLowerCase() === lower)
    .sort((a, b) => Number(!a.startsWith("Mutation.")) - Number(!b.startsWith("Mutation.")));
  if (named.length === 0) return { operation: text, others: [] };
  return { operation: named[0], others: named.slice(1) };
}
