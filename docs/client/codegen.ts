/**
 * @graphql-codegen config for a frontend or Node client of graphql-credits (copy it into the client's
 * repository as codegen.ts, and its operations, e.g. docs/client/credits.graphql, under src/). It types
 * the client's own operations against the schema read from, in this order:
 * - CREDITS_SCHEMA: a schema file or a server's GraphQL URL. The package ships its schema, so
 *   CREDITS_SCHEMA=node_modules/graphql-credits/schema/schema.graphql needs no running server, and is
 *   the way against a production server, which turns introspection off;
 * - CREDITS_URL: the server the client talks to (the example reads it too), by introspection;
 * - http://localhost:4000/graphql, a development server.
 * It maps the scalars as the server sends them. Subscriptions (creditBalanceChanged) are typed like
 * queries.
 *
 * The client needs: npm install -D @graphql-codegen/cli @graphql-codegen/typescript-operations
 * @graphql-codegen/typed-document-node, and npm install graphql @graphql-typed-document-node/core.
 *
 * No "typescript" plugin: typescript-operations already emits the enums and inputs the operations use
 * (as string literals here), and with "typescript" beside it both emit `BalanceThresholdCrossing` and
 * `LedgerKind`, which does not compile (TS2567). The server's own codegen.ts uses the same two plugins.
 * test/unit/client-docs.test.ts generates with this file and type-checks the result and
 * docs/client/example.ts.
 */
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  overwrite: true,
  schema: process.env.CREDITS_SCHEMA ?? process.env.CREDITS_URL ?? "http://localhost:4000/graphql",
  documents: ["src/**/*.graphql"],
  generates: {
    "src/generated/credits.ts": {
      plugins: ["typescript-operations", "typed-document-node"],
      config: {
        enumType: "string-literal",
        useTypeImports: true,
        // The same mapping graphql-credits exports as CREDITS_SCALARS (`import { CREDITS_SCALARS } from
        // "graphql-credits/client"`, src/client/credits-extension.ts).
        scalars: { DateTimeISO: "string", JSONObject: "Record<string, unknown>", SafeInt: "number" },
      },
    },
  },
};

export default config;
