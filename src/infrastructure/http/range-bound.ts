import { requestInstantSchema } from '../../domain/shared/calendar-date.js';

/** `from` (inclusive) and `to` (exclusive) of a read bounded in time, as a query string gives them. */
export const timeRange = {
  from: requestInstantSchema.optional().describe('Inclusive, ISO 8601'),
  to: requestInstantSchema.optional().describe('Exclusive, ISO 8601'),
};

/**
 * For `.refine(inTimeOrder, inTimeOrderIssue)` on a query holding `timeRange`: a `from` after its
 * `to` is a caller's mistake (swapped bounds), told as such rather than answered with an empty
 * page an auditor could take for "nothing happened". `from` equal to `to` is an empty range.
 */
export function inTimeOrder({ from, to }: { readonly from?: string | undefined; readonly to?: string | undefined }): boolean {
  const start = rangeBound(from);
  const end = rangeBound(to);
  return start === undefined || end === undefined || start.getTime() <= end.getTime();
}

export const inTimeOrderIssue = { message: 'must not be before from', path: ['to'] };

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
