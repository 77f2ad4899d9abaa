import { z } from 'zod';

/** ISO 4217 code, upper case. */
export const currencySchema = z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 currency code like EUR');

/** An amount in minor units (cents) of one currency; integers only, so no rounding drift. */
export const moneySchema = z.object({
  amount: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  currency: currencySchema,
});
export type Money = z.infer<typeof moneySchema>;

/**
 * `percent` (a whole number) of `amount`, rounded down to a whole minor unit (the customer never
 * gets a fraction more). In BigInt: past 2^53 (any amount over about 9×10^13 minor units times
 * 100) a float product rounds, and 100 % of an amount came out one more than the amount, a
 * refund above what was paid.
 */
export function percentOf(amount: number, percent: number): number {
  return Number((BigInt(amount) * BigInt(percent)) / 100n);
}
