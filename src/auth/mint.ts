/** Mints HS256 tokens: for development mode (`npm run token`), the start banner and tests. */
import { SignJWT } from "jose";
import { DEVELOPMENT_JWT_SECRET } from "./dev-secret.js";

export interface MintOptions {
  sub: string;
  admin?: boolean;
  secret?: string;
  expiresIn?: string;
  issuer?: string;
  audience?: string;
  extraClaims?: Record<string, unknown>;
}

export async function mintToken(options: MintOptions): Promise<string> {
  const claims: Record<string, unknown> = { ...(options.extraClaims ?? {}) };
  if (options.admin) claims.app_metadata = { role: "admin" };
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(options.sub)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "30d");
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return jwt.sign(new TextEncoder().encode(options.secret ?? DEVELOPMENT_JWT_SECRET));
}
