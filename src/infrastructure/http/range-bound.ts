/**
 * A range bound (`from`, inclusive, or `to`, exclusive) as the millisecond a `Date` can hold,
 * rounded up when the text names a later instant within it: `…00.0001Z` is past every event of
 * `…00.000Z`, which truncated it would take in (`from`) or leave out (`to`). The audit state
 * route's inclusive `at` truncates instead, which is right for it.
 */
export function rangeBound(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const truncated = new Date(value);
  return hasSubMillisecondDigits(value) ? new Date(truncated.getTime() + 1) : truncated;
}

/** Whether the fraction of a second goes past milliseconds with a digit other than 0. */
function hasSubMillisecondDigits(instant: string): boolean {
  const fraction = /\.(\d+)/.exec(instant)?.[1] ?? '';
  return /[1-9]/.test(fraction.slice(3));
}
