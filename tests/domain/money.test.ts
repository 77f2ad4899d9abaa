import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { percentOf } from '../../src/domain/shared/money.js';

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
