/**
 * Every admin mutation takes an Idempotency-Key (DESIGN.md, "Retries and crashes": createSubscription,
 * grantCredits, adjustCredits, refundCharge, setSubscriptionStatus, setLowBalanceThreshold), and the
 * documents that list them name them all. The admin mutations are the schema's mutations that are
 * not metered (no @credits); test/e2e/admin-idempotency.test.ts proves each one replays. The audit
 * (REPORT.md, finding 4) found README and docs/reliability.md naming five of the six.
 */
import { readFileSync } from "node:fs";
import { Kind, parse, type ObjectTypeDefinitionNode } from "graphql";
import { describe, expect, it } from "vitest";

function adminMutations(): string[] {
  const document = parse(readFileSync("schema/schema.graphql", "utf8"));
  const mutation = document.definitions.find(
    (d): d is ObjectTypeDefinitionNode => d.kind === Kind.OBJECT_TYPE_DEFINITION && d.name.value === "Mutation",
  );
  return (mutation?.fields ?? []).filter((f) => !f.directives?.some((d) => d.name.value === "credits")).map((f) => f.name.value);
}

/** The `code` names in the first sentence of `text` that contains `marker`, up to the marker. */
function namesBefore(text: string, marker: string): string[] {
  const flat = text.replace(/\s+/g, " ");
  const at = flat.indexOf(marker);
  expect(at, `no "${marker}"`).toBeGreaterThan(-1);
  const sentenceStart = Math.max(flat.lastIndexOf(". ", at), flat.lastIndexOf("# ", at), 0);
  return [...flat.slice(sentenceStart, at).matchAll(/`([A-Za-z]+)`/g)].map((m) => m[1]!);
}

describe("documents name every admin mutation that takes Idempotency-Key", () => {
  const expected = adminMutations();

  it("the schema's admin mutations are DESIGN.md's six", () => {
    expect([...expected].sort()).toEqual(
      ["adjustCredits", "createSubscription", "grantCredits", "refundCharge", "setLowBalanceThreshold", "setSubscriptionStatus"].sort(),
    );
  });

  it("README", () => {
    const names = namesBefore(readFileSync("README.md", "utf8"), "take the same header");
    expect([...names].sort()).toEqual([...expected].sort());
  });

  it("docs/reliability.md, 'Idempotency-Key on admin mutations'", () => {
    const text = readFileSync("docs/reliability.md", "utf8");
    const section = text.slice(text.indexOf("### Idempotency-Key on admin mutations"));
    const names = namesBefore(section, "honour the header");
    expect([...names].sort()).toEqual([...expected].sort());
  });
});
