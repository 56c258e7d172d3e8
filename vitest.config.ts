import { createRequire } from "node:module";
import { defineConfig } from "vitest/config";

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // Our ESM code and the CJS packages (type-graphql, graphql-tools) must share one graphql module,
    // or graphql refuses objects "from another module or realm".
    alias: { graphql: require.resolve("graphql") },
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 120_000,
    setupFiles: ["test/helpers/setup.ts"],
    // Builds the console once when stale, so servers started by tests never build it themselves.
    globalSetup: ["test/helpers/console-global-setup.ts"],
  },
});
