import { z } from 'zod';

/**
 * Three capital letters: the shape events were stored under. Lax on purpose: an event recorded in
 * a code the runtime does not (or no longer) knows must still decode, so the stream still folds.
 */
export const currencySchema = z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 currency code like EUR');

/** Computed once: `supportedValuesOf` builds a fresh array of some 160 codes on each call. */
const knownCurrencies = new Set(Intl.supportedValuesOf('currency'));

/**
 * An ISO 4217 code the runtime knows, for requests and commands: a made-up or misspelt code
 * (`ZZZ`, `EUE`) passes the shape, yet nobody can pay in it (the payment provider refuses it).
 */
export const knownCurrencySchema = currencySchema.refine((code) => knownCurrencies.has(code), {
  message: 'must be an ISO 4217 currency code like EUR',
  // Only a code of the right shape is looked up: `eur` is refused once, not twice over.
  when: (payload) => payload.issues.length === 0,
});

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
