import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { pageSchema } from '../../src/infrastructure/http/query-context.js';
import { responseSerializerCompiler } from '../../src/infrastructure/http/response-serializer.js';
import { bookingSchema } from '../../src/infrastructure/http/routes/bookings.query-routes.js';
import { bookingStatusSchema } from '../../src/domain/booking/booking.status.js';

const serializerFor = (schema: unknown) => responseSerializerCompiler({ schema, method: 'GET', url: '/test' });

const int = fc.integer({ min: -1_000_000_000, max: 1_000_000_000 });
const text = fc.string({ unit: 'grapheme', maxLength: 30 });
const booking = fc.record({
  id: text,
  listingId: text,
  consumerId: text,
  ownerId: text,
  startDate: text,
  endDate: text,
  nights: int,
  pricePerNight: int,
  total: int,
  currency: text,
  status: fc.constantFrom(...bookingStatusSchema.options),
  holdExpiresAt: text,
  requestedAt: text,
  paidAmount: fc.option(int, { nil: null }),
  cancellation: fc.option(fc.record({ cancelledBy: text, refundPercent: int, refundAmount: int }), { nil: null }),
  version: int,
});

describe('response serializer', () => {
  const bookingPage = pageSchema(bookingSchema);
  const writeBookingPage = serializerFor(bookingPage);
  test.prop([fc.array(booking, { maxLength: 5 }), fc.option(text, { nil: null })])('writes what zod would for any page of bookings', (items, nextCursor) => {
    const page = { items, nextCursor };
    expect(JSON.parse(writeBookingPage(page))).toEqual(bookingPage.parse(page));
  });

  it('drops properties the schema does not name, as zod strips them', () => {
    const schema = z.object({ id: z.string(), nested: z.object({ kept: z.number() }) });
    const written = serializerFor(schema)({ id: 'a', secret: 'no', nested: { kept: 1, internal: true } });
    expect(JSON.parse(written)).toEqual({ id: 'a', nested: { kept: 1 } });
  });

  it('writes unions, optional fields, records and unknown values', () => {
    const schema = z.object({
      kind: z.discriminatedUnion('type', [z.object({ type: z.literal('a'), n: z.number() }), z.object({ type: z.literal('b'), s: z.string() })]),
      maybe: z.string().optional(),
      counts: z.record(z.string(), z.number()),
      data: z.unknown(),
    });
    const value = { kind: { type: 'b', s: 'x' }, counts: { a: 1, b: 2 }, data: { deep: [1, 'two', null, { three: 3 }] } };
    expect(JSON.parse(serializerFor(schema)(value))).toEqual(value);
    expect(JSON.parse(serializerFor(schema)({ ...value, kind: { type: 'a', n: 2 }, maybe: 'here' }))).toEqual({ ...value, kind: { type: 'a', n: 2 }, maybe: 'here' });
  });

  it('refuses a response without a required property rather than write it', () => {
    expect(() => serializerFor(z.object({ id: z.string() }))({})).toThrow(/id/);
  });
});
