/**
 * The grants' part of the recovery pass (DESIGN.md, "Retries and crashes"): renew plan periods that
 * have ended, then expire what is left of expired grants. Renewal goes first so an ending period's
 * unused plan credits are rolled over before anything would expire them. Run at start and every
 * RECOVERY_INTERVAL, so an expiry is applied at most one interval late (and a hold never counts on
 * expired credits meanwhile).
 */
import type { Logger } from "pino";
import type { Database } from "../db/database.js";
import type { PlanDefinition } from "../plans/plan-config.js";
import { renewDuePeriods, startMissingPeriods, type RenewalReport } from "../plans/plan-periods.js";
import { expireDueGrants, type ExpiryReport } from "./expiry.js";

export interface GrantMaintenanceReport {
  /** First periods started for subscriptions on a configured plan that had none (startMissingPeriods). */
  started: number;
  renewal: RenewalReport;
  expiry: ExpiryReport;
}

export async function runGrantMaintenance(options: {
  db: Database;
  plans: readonly PlanDefinition[];
  logger: Logger;
  /**
   * Also start a first period for every subscription on a configured plan that has none: the
   * server's first pass does (its configuration may know plans the last one did not).
   */
  startMissingPeriods?: boolean;
}): Promise<GrantMaintenanceReport> {
  const log = options.logger.child({ component: "recovery" });
  const started = options.startMissingPeriods
    ? await startMissingPeriods(options.db, options.plans, {
        onFailure: (subscriptionId, err) => log.error({ event: "plans.start_failed", subscriptionId, err }, "plan period start failed: retried at the next start"),
      })
    : 0;
  const renewal = await renewDuePeriods(options.db, options.plans, (subscriptionId, err) =>
    log.error({ event: "plans.renewal_failed", subscriptionId, err }, "plan renewal failed: retried next pass"),
  );
  const expiry = await expireDueGrants(options.db, undefined, (balance, err) =>
    log.error({ event: "grants.expiry_failed", ...balance, err }, "grant expiry failed: retried next pass"),
  );
  const report = { started, renewal, expiry };
  if (started + renewal.renewed + renewal.closed + renewal.failed + expiry.expired + expiry.failed > 0) {
    log.info({ event: "grants.maintenance", ...report }, "plans renewed and grants expired");
  }
  return report;
}
