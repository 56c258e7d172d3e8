/** Checks an IANA time-zone argument (e.g. "Europe/Berlin") before it reaches SQL. */
import { BadUserInputError } from "../errors/errors.js";

/** Zone names are letters, digits and `/_+-`; nothing else ever reaches the database. */
const ZONE_NAME = /^[A-Za-z0-9/_+-]{1,64}$/;

/**
 * The zone's canonical IANA name (as the runtime's time-zone database spells it), or
 * BAD_USER_INPUT naming the argument when the zone is unknown.
 */
export function checkTimeZone(timeZone: string | null | undefined, argumentName = "timeZone"): string {
  if (timeZone === null || timeZone === undefined) return "UTC";
  if (ZONE_NAME.test(timeZone)) {
    try {
      return new Intl.DateTimeFormat("en-US", { timeZone }).resolvedOptions().timeZone;
    } catch {
      // Unknown to the time-zone database: answered below.
    }
  }
  throw new BadUserInputError(
    `${argumentName} ${JSON.stringify(timeZone.slice(0, 80))} is not an IANA time zone (for example "UTC" or "Europe/Berlin")`,
    argumentName,
  );
}
