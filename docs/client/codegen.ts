/**
 * @graphql-codegen config for a frontend or Node client of graphql-credits (copy it into the client's
 * repository as codegen.ts). It reads the schema from a running server (or its committed
 * schema/schema.graphql), types the client's own operations, and maps the scalars as the server
 * sends them. Subscriptions (creditBalanceChanged) are typed like queries.
 */
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  overwrite: true,
  schema: process.env.CREDITS_SCHEMA ?? "http://localhost:4000/graphql",
  documents: ["src/**/*.graphql"],
  generates: {
    "src/generated/credits.ts": {
      plugins: ["typescript", "typescript-operations", "typed-document-node"],
      config: {
        enumType: "string-literal",
        useTypeImports: true,
        // The same mapping graphql-credits exports as CREDITS_SCALARS (src/client/credits-extension.ts).
        scalars: { DateTimeISO: "string", JSONObject: "Record<string, unknown>", SafeInt: "number" },
      },
    },
  },
};

export default config;
