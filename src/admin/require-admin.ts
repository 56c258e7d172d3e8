/** The gate of every admin-only field: an authenticated caller who is an admin, else UNAUTHENTICATED / FORBIDDEN. */
import type { Viewer } from "../auth/viewer.js";
import { ForbiddenError } from "../errors/errors.js";
import { requireViewer, type RequestContext } from "../graphql/context.js";

export function requireAdmin(ctx: RequestContext, what: string): Viewer {
  const viewer = requireViewer(ctx);
  if (!viewer.isAdmin) throw new ForbiddenError(`Only admins may ${what}`);
  return viewer;
}
