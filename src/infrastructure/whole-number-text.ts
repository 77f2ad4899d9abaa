import { z } from 'zod';

/**
 * A whole number from text (a query parameter, an environment setting, a CLI option), from
 * `min` to `max`: digits only, because coercion read an empty value (a form's blank field, a
 * `.env` template's `NAME=`) as 0, and `0x10` or `1e3` as numbers.
 */
export function wholeNumberText(min: number, max: number = Number.MAX_SAFE_INTEGER) {
  return z
    .string()
    .regex(/^[0-9]{1,16}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
}
