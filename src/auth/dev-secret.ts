/**
 * The development secret: used only when neither JWT_SECRET nor JWT_JWKS_URL is configured, and the
 * server says so loudly at start. It is public on purpose; never use it in production.
 */
export const DEVELOPMENT_JWT_SECRET = "graphql-credits-development-secret-do-not-use-in-production";
