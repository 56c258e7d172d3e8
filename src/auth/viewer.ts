/** The authenticated caller, derived from a verified JWT. */
export interface Viewer {
  /** The token's `sub`: the user id. */
  readonly id: string;
  /** `role: service_role` (Supabase service key) or `app_metadata.role: admin`. */
  readonly isAdmin: boolean;
}

export function isAdminClaims(claims: Record<string, unknown>): boolean {
  if (claims.role === "service_role") return true;
  const appMetadata = claims.app_metadata;
  return typeof appMetadata === "object" && appMetadata !== null && (appMetadata as Record<string, unknown>).role === "admin";
}
