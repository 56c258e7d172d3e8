/**
 * The application's long-lived services, built once at start and handed to every request through
 * the context. Resolvers reach the database, providers and configuration only through here.
 */
import type { GraphQLSchema } from "graphql";
import type { Logger } from "pino";
import type { Config } from "../config/config.js";
import type { Database, DatabaseHandle } from "../db/database.js";
import type { MeteredField } from "../credits/metered-field.js";
import type { ChargeObserver } from "../credits/charge-observer.js";
import type { AlertService } from "../observability/alerts/alert-service.js";
import type { OperationProviders } from "../providers/providers.js";
import type { LiveBalance } from "../live/live-balance.js";
import type { DocumentChecks } from "../graphql/validation/index.js";

export interface AppServices {
  readonly config: Config;
  readonly database: DatabaseHandle;
  readonly db: Database;
  readonly logger: Logger;
  readonly providers: OperationProviders;
  readonly observer: ChargeObserver;
  /** Stores, logs and posts alerts (creditAlerts); `flush()` waits for alerts still being stored. */
  readonly alerts?: AlertService;
  /** creditBalanceChanged: this instance's live-balance subscribers and the notifications feeding them. */
  live?: LiveBalance;
  /** Every @credits field of the served schema, validated at start. */
  readonly meteredFields: readonly MeteredField[];
  /** The executable schema, once built (creditPreview validates documents against it). */
  schema?: GraphQLSchema;
  /** How requests are parsed and validated beyond graphql's defaults (operation limits); previews apply them too. */
  documentChecks?: DocumentChecks;
}
