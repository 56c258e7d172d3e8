/** `npm run schema:emit`: writes schema/schema.graphql from the code. */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildBaseSchema, printSchemaSdl } from "../graphql/build-schema.js";

const target = fileURLToPath(new URL("../../schema/schema.graphql", import.meta.url));
writeFileSync(target, printSchemaSdl(buildBaseSchema()));
console.log(`wrote ${target}`);
