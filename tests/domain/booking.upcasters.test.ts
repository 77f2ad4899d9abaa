import { describe, expect, it } from 'vitest';
import { createEventCodec, type Upcaster } from '../../src/application/command-handling/event-codec.js';
import { bookingDecider } from '../../src/domain/booking/booking.decider.js';
import { bookingEventSchema } from '../../src/domain/booking/booking.events.js';
import { bookingRequestedV1Schema, bookingUpcasters, upcastBookingRequestedV1 } from '../../src/domain/booking/booking.upcasters.js';

const v1 = {
  bookingId: 'booking-1',
  listingId: 'listing-1',
  consumerId: 'consumer-1',
  ownerId: 'owner-1',
  startDate: '2025-03-10',
  endDate: '2025-03-14',
  nightlyRate: 8_000,
  totalAmount: 32_000,
  holdExpiresAt: '2025-03-01T12:15:00.000Z',
};

describe('BookingRequested v1 → v2', () => {
  it('fills in euros, UTC and the nights, and renames the prices', () => {
    expect(upcastBookingRequestedV1(bookingRequestedV1Schema.parse(v1))).toEqual({
      bookingId: 'booking-1',
      listingId: 'listing-1',
      consumerId: 'consumer-1',
      ownerId: 'owner-1',
      startDate: '2025-03-10',
      endDate: '2025-03-14',
      nights: 4,
      pricePerNight: 8_000,
      total: 32_000,
      currency: 'EUR',
      timeZone: 'UTC',
      holdExpiresAt: '2025-03-01T12:15:00.000Z',
    });
  });

  it('gives data the current event schema accepts and the decider folds', () => {
    const [step] = bookingUpcasters;
    expect(step).toMatchObject({ type: 'BookingRequested', fromVersion: 1, toVersion: 2 });
    const event = bookingEventSchema.parse({ type: 'BookingRequested', data: step?.upcast(v1, { schemaVersion: 1 }) });
    expect(bookingDecider.evolve(bookingDecider.initialState, event)).toMatchObject({ status: 'requested', booking: { total: 32_000, currency: 'EUR' } });
  });

  it('refuses stored data that is not a v1 BookingRequested', () => {
    const [step] = bookingUpcasters;
    expect(() => step?.upcast({ ...v1, nightlyRate: undefined }, { schemaVersion: 1 })).toThrow();
  });

  it('fits the application event codec, which lifts a stored v1 event on read', () => {
    const steps: readonly Upcaster[] = bookingUpcasters;
    const codec = createEventCodec(bookingEventSchema, steps);
    expect(codec.schemaVersion('BookingRequested')).toBe(2);
    expect(codec.schemaVersion('BookingPaid')).toBe(1);
    const event = codec.decode({ type: 'BookingRequested', data: v1, metadata: { schemaVersion: 1 } });
    expect(event).toEqual({ type: 'BookingRequested', data: upcastBookingRequestedV1(v1) });
  });
});
