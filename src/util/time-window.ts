/** Checks an optional [from, to) time window of a query's arguments. */
import { BadUserInputError } from "../errors/errors.js";

export interface TimeWindow {
  from?: Date;
  to?: Date;
}

/** The window with nulls dropped; BAD_USER_INPUT when `from` is after `to`. */
export function checkTimeWindow(from: Date | null | undefined, to: Date | null | undefined, names = { from: "from", to: "to" }): TimeWindow {
  const window: TimeWindow = {};
  if (from) window.from = from;
  if (to) window.to = to;
  if (window.from && window.to && window.from.getTime() > window.to.getTime()) {
    throw new BadUserInputError(`${names.from} must not be after ${names.to}`, names.from);
  }
  return window;
}
