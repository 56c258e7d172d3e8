/**
 * What `npm start` says when it cannot listen on PORT and HOST: one line naming the variable to fix
 * and why, e.g. `PORT: 4000 is already in use on 0.0.0.0`, instead of node's uncaught exception.
 */

export interface ListenFailure {
  variable: "PORT" | "HOST";
  cause: string;
  message: string;
}

export function listenFailure(address: { port: number; host: string }, err: unknown): ListenFailure {
  const code = (err as { code?: unknown } | null)?.code;
  const { port, host } = address;
  switch (code) {
    case "EADDRINUSE":
      return failure("PORT", "already in use", `PORT: ${port} is already in use on ${host}: stop what listens there, or choose another port`);
    case "EACCES":
      return failure("PORT", "permission denied", `PORT: listening on ${port} is not permitted (ports below 1024 need privileges): choose a port of 1024 or more`);
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
      return failure("HOST", "host not found", `HOST: "${host}" is not an address or a host name this machine can resolve`);
    case "EADDRNOTAVAIL":
      return failure("HOST", "address not on this machine", `HOST: ${host} is not an address of this machine: use 0.0.0.0 (every interface) or one of its addresses`);
    default: {
      const cause = err instanceof Error ? err.message.split("\n")[0] : String(err);
      return failure("PORT", cause, `PORT/HOST: cannot listen on ${host}:${port} (${cause})`);
    }
  }
}

function failure(variable: ListenFailure["variable"], cause: string, message: string): ListenFailure {
  return { variable, cause, message };
}
