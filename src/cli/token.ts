/**
 * `npm run token -- --sub <id> [--admin] [--expires 30d]`: prints a token for development mode
 * (or for JWT_SECRET when it is set, so a deployment's operator can mint a test token).
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../config/config.js";
import { mintToken } from "../auth/mint.js";

const { values } = parseArgs({
  options: {
    sub: { type: "string" },
    admin: { type: "boolean", default: false },
    expires: { type: "string", default: "30d" },
  },
});

if (!values.sub) {
  console.error("usage: npm run token -- --sub <user id> [--admin] [--expires 30d]");
  process.exit(2);
}
const config = loadConfig();
if (config.JWT_JWKS_URL && !config.JWT_SECRET) {
  console.error("JWT_JWKS_URL is set: tokens come from your identity provider, not from this command.");
  process.exit(2);
}
console.log(
  await mintToken({
    sub: values.sub,
    admin: values.admin,
    secret: config.JWT_SECRET,
    expiresIn: values.expires,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
  }),
);
