/** Every resolver class of the served schema. Add a new resolver here and it is in the schema. */
import { CatalogResolver } from "./catalog-resolver.js";
import { OperationsResolver } from "./operations-resolver.js";
import { SubscriptionResolver, ViewerResolver } from "./viewer-resolver.js";

export const RESOLVERS = [ViewerResolver, SubscriptionResolver, CatalogResolver, OperationsResolver] as const;
