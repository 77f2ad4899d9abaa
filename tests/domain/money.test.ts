import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { listingEventSchema } from '../../src/domain/listing/listing.events.js';
import { paymentEventSchema } from '../../src/domain/payment/payment.events.js';
import { knownCurrencySchema, percentOf } from '../../src/domain/shared/money.js';

describe('percentOf', () => {
  it('given the largest amount money holds, then 100 % is that amount and 50 % its exact half, rounded down', () => {
    expect(percentOf(Number.MAX_SAFE_INTEGER, 100)).toBe(Number.MAX_SAFE_INTEGER);
    expect(percentOf(Number.MAX_SAFE_INTEGER, 50)).toBe((Number.MAX_SAFE_INTEGER - 1) / 2);
    expect(percentOf(360_000_000_000_001, 100)).toBe(360_000_000_000_001);
  });

  test.prop([fc.maxSafeNat(), fc.integer({ min: 0, max: 100 })])('given any amount and whole percent, then the largest whole amount not above the exact share', (amount, percent) => {
    const share = BigInt(percentOf(amount, percent));
    const exact = BigInt(amount) * BigInt(percent);
    expect(share * 100n <= exact && exact < (share + 1n) * 100n).toBe(true);
  });
});

describe('currencies', () => {
  it('given a request, then only a currency the runtime knows is taken', () => {
    for (const known of ['EUR', 'USD', 'JPY', 'CHF']) expect(knownCurrencySchema.safeParse(known).success, known).toBe(true);
    for (const unknown of ['ZZZ', 'EUE', 'eur', 'EURO', '']) expect(knownCurrencySchema.safeParse(unknown).success, unknown).toBe(false);
  });

  it('given a stored event in a currency the runtime does not know, then it still decodes', () => {
    const repriced = { type: 'ListingPriceChanged', data: { listingId: 'listing-a', pricePerDay: 9_000, currency: 'ZZZ' } };
    expect(listingEventSchema.parse(repriced)).toEqual(repriced);
    const refunded = { type: 'RefundRequested', data: { paymentId: 'p1', refundId: 'r1', amount: 100, currency: 'ZZZ' } };
    expect(paymentEventSchema.parse(refunded)).toEqual(refunded);
  });
});
