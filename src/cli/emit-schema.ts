/**
 * `npm run schema:emit`: writes schema/schema.graphql from the code, after checking every @credits
 * use as the server does at start (a known credit type, registered estimator and meter, a
 * subscriptionId argument), so a schema the server would refuse to start with is never written.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildBaseSchema, printSchemaSdl } from "../graphql/build-schema.js";
import { readMeteredFields } from "../credits/credits-directive.js";
import { CREDIT_TYPES } from "../credits/credit-types.js";
import { ESTIMATORS } from "../credits/estimators/registry.js";
import { METERS } from "../credits/meters/registry.js";

const target = fileURLToPath(new URL("../../schema/schema.graphql", import.meta.url));
const schema = buildBaseSchema();
try {
  readMeteredFields(schema, { creditTypes: new Set(CREDIT_TYPES.map((t) => t.name)), estimators: ESTIMATORS, meters: METERS });
} catch (err) {
  console.error(`schema:emit: ${(err as Error).message}; schema/schema.graphql is left as it was`);
  process.exit(1);
}
writeFileSync(target, printSchemaSdl(schema));
console.log(`wrote ${target}`);
