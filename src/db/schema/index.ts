/** Every table of the database; drizzle-kit reads this folder to generate migrations into drizzle/. */
export * from "./subscriptions.js";
export * from "./balances.js";
export * from "./ledger.js";
export * from "./pending-charges.js";
export * from "./alerts.js";
export * from "./idempotency.js";
export * from "./balance-thresholds.js";
export * from "./grants.js";
export * from "./instance-leases.js";
