/**
 * The GraphQL the README and docs/ tell readers to send is valid against the emitted schema:
 * every ```graphql block, every `"query": "…"` string of a request body in a code block (the curl
 * examples), and every inline `{ … }` / `query …` / `mutation …` span whose first field is one of
 * the schema's root fields (other braces in backticks are JavaScript objects).
 * Variables need not be declared: snippets name them as prose does. An outside audit followed
 * docs/backup-and-restore.md literally and its check, `{ ledgerAudit { ok mismatches { kind } } }`,
 * was refused (LedgerMismatch has no `kind`).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  buildSchema,
  Kind,
  NoUndefinedVariablesRule,
  NoUnusedVariablesRule,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type OperationDefinitionNode,
} from "graphql";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const schema = buildSchema(readFileSync(join(ROOT, "schema/schema.graphql"), "utf8"));
const RULES = specifiedRules.filter((rule) => rule !== NoUndefinedVariablesRule && rule !== NoUnusedVariablesRule);
/** docs/library.md is left out: its operations run on a host's own schema, not this server's. */
const DOCS = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md") && f !== "library.md")
    .map((f) => `docs/${f}`),
];

function parsed(text: string): DocumentNode | undefined {
  try {
    return parse(text);
  } catch {
    return undefined;
  }
}

/** Whether an inline span reads as an operation on this schema: its first field is a root field. */
function namesARootField(document: DocumentNode): boolean {
  const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const first = operation?.selectionSet.selections[0];
  if (!operation || first?.kind !== Kind.FIELD) return false;
  const root = schema.getRootType(operation.operation);
  return root !== undefined && root !== null && first.name.value in root.getFields();
}

/** Each operation of a snippet on its own (a block may show several anonymous ones, one after the other). */
function problems(document: DocumentNode): string[] {
  return document.definitions.flatMap((definition) =>
    validate(schema, { kind: Kind.DOCUMENT, definitions: [definition] }, RULES).map((error) => error.message),
  );
}

function snippetsOf(markdown: string): { text: string; document: DocumentNode }[] {
  const found: { text: string; document: DocumentNode }[] = [];
  for (const [, block] of markdown.matchAll(/```graphql\n([\s\S]*?)```/g)) {
    const document = parsed(block);
    found.push({ text: block, document: document ?? parse(block) });
  }
  for (const [, literal] of markdown.matchAll(/"query"\s*:\s*("(?:[^"\\\n]|\\.)*")/g)) {
    const text = JSON.parse(literal) as string;
    const document = parsed(text);
    if (document) found.push({ text, document });
  }
  const prose = markdown.replace(/```[\s\S]*?```/g, "");
  for (const [, span] of prose.matchAll(/`([^`\n]+)`/g)) {
    if (!/^\s*(\{|query\b|mutation\b|subscription\b)/.test(span)) continue;
    const document = parsed(span);
    if (document && namesARootField(document)) found.push({ text: span, document });
  }
  return found;
}

describe("GraphQL in the README and docs/", () => {
  it.each(DOCS)("%s: every operation it shows is valid against schema/schema.graphql", (file) => {
    const invalid = snippetsOf(readFileSync(join(ROOT, file), "utf8"))
      .map(({ text, document }) => ({ text: text.trim().slice(0, 160), problems: problems(document) }))
      .filter((snippet) => snippet.problems.length > 0);
    expect(invalid).toEqual([]);
  });

  it("finds the operations it checks (the inline ones and the blocks)", () => {
    const all = DOCS.flatMap((file) => snippetsOf(readFileSync(join(ROOT, file), "utf8")));
    const texts = all.map((s) => s.text);
    expect(texts.some((text) => text.startsWith("mutation") && text.includes("runAiTask"))).toBe(true); // README's curl
    expect(texts.some((text) => text.includes("ledgerAudit"))).toBe(true); // an inline span
    expect(texts.some((text) => text.includes("grantCredits"))).toBe(true); // a ```graphql block
  });
});
