import { defineConfig } from "drizzle-kit";

// Migrations are generated from src/db/schema by `npm run db:generate` and applied at start. They are
// recorded in the credits core's own table (src/db/migrate-postgres.ts), not drizzle's default
// drizzle.__drizzle_migrations, which a host application using drizzle keeps for its own migrations.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/db/schema/*.ts",
  out: "./drizzle",
  migrations: { schema: "drizzle", table: "__graphql_credits_migrations" },
});
