/** Every resolver class of the served schema. Add a new resolver here and it is in the schema. */
import { AdminResolver } from "./admin-resolver.js";
import { AlertsResolver } from "./alerts-resolver.js";
import { BalanceHeldResolver } from "./balance-held-resolver.js";
import { CatalogResolver } from "./catalog-resolver.js";
import { LedgerResolver } from "./ledger-resolver.js";
import { OperationsResolver } from "./operations-resolver.js";
import { PreviewResolver } from "./preview-resolver.js";
import { UsageResolver } from "./usage-resolver.js";
import { LiveBalanceResolver } from "./live-balance-resolver.js";
import { ThresholdResolver } from "./threshold-resolver.js";
import { SubscriptionResolver, ViewerResolver } from "./viewer-resolver.js";

export const RESOLVERS = [ViewerResolver, SubscriptionResolver, CatalogResolver, OperationsResolver, AdminResolver, PreviewResolver, LedgerResolver, UsageResolver, AlertsResolver, LiveBalanceResolver, ThresholdResolver, BalanceHeldResolver] as const;
