/** 10000-01-01T00:00:00Z: from here on an ISO 8601 instant takes a sign and six year digits, which our events refuse. */
const endOfFourDigitYears = 253_402_300_800;

/**
 * A Stripe timestamp (`created`: whole seconds since the Unix epoch) as the UTC instant our events
 * store; `undefined` for anything else, since a malformed instant in a stored event would make the
 * stream unreadable, and a capture time we do not know only leaves the log's order to decide.
 */
export function stripeInstant(seconds: unknown): string | undefined {
  if (typeof seconds !== 'number' || !Number.isSafeInteger(seconds) || seconds <= 0 || seconds >= endOfFourDigitYears) return undefined;
  return new Date(seconds * 1000).toISOString();
}
