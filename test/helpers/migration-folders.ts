/** The credits migrations' journal, and copies of drizzle/ as an older release shipped it, for migration tests. */
import { randomBytes } from "node:crypto";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MIGRATIONS_FOLDER } from "../../src/db/connect.js";

/** drizzle/meta/_journal.json: every migration's tag and folder time, in order. */
export const JOURNAL = JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, "meta", "_journal.json"), "utf8")) as {
  entries: { tag: string; when: number }[];
};

/** A copy of drizzle/ under `dir` with its first `count` migrations, as an older release shipped it. */
export function migrationsUpTo(dir: string, count: number): string {
  const folder = join(dir, `credits-${count}-${randomBytes(3).toString("hex")}`);
  mkdirSync(join(folder, "meta"), { recursive: true });
  const entries = JOURNAL.entries.slice(0, count);
  writeFileSync(join(folder, "meta", "_journal.json"), JSON.stringify({ ...JOURNAL, entries }));
  for (const { tag } of entries) cpSync(join(MIGRATIONS_FOLDER, `${tag}.sql`), join(folder, `${tag}.sql`));
  return folder;
}
