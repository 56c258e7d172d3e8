/**
 * JWT_CLOCK_TOLERANCE's default, apart from the verifier so the configuration can name it without
 * loading jose. An identity provider's clock and this server's drift apart by seconds; without
 * leeway a token minted "now" by a clock ahead was refused as not valid yet, and one used in its
 * last second as expired. Small enough that an expired token stays expired.
 */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;
