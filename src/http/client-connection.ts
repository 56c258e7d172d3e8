/**
 * Whether a request's client is still there to be answered: what "pay only for delivered results"
 * (DESIGN.md, the charge path's step 8) rests on.
 */
import type { Socket } from "node:net";
import { setImmediate as nextCheckPhase } from "node:timers/promises";

/**
 * The connection can no longer carry a response: destroyed, or its client closed its side (node:http
 * then ends ours at once, so `writable` falls before `destroyed` is set, a loop turn later).
 */
export function connectionClosed(socket: Socket): boolean {
  return socket.destroyed || !socket.writable;
}

/**
 * Waits until the event loop has handled the I/O that is already in: a client's close that arrived in
 * the same poll as the database's answer to the settlement may otherwise be read only after the
 * response is written (and a write on a connection its client closed succeeds, as far as the server
 * can tell). Under load, one poll holds many events in no set order: an outside audit found 14 of
 * 40 clients that hung up after their holds charged in full before this wait was added.
 */
export async function afterPendingIo(): Promise<void> {
  await nextCheckPhase();
}
