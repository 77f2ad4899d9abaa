import { z } from 'zod';

/** ISO 4217 code, upper case. */
export const currencySchema = z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 currency code like EUR');

/** An amount in minor units (cents) of one currency; integers only, so no rounding drift. */
export const moneySchema = z.object({
  amount: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  currency: currencySchema,
});
export type Money = z.infer<typeof moneySchema>;

/** `percent` of `amount`, rounded down to a whole minor unit (the customer never gets a fraction more). */
export function percentOf(amount: number, percent: number): number {
  return Math.floor((amount * percent) / 100);
}
