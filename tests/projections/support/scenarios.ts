import type { CommandSide } from '../../../src/application/command-handlers.js';
import { requestBooking } from '../../../src/application/bookings/booking.use-cases.js';
import { bookingStreamId, isRecorded } from '../../../src/domain/booking/booking.decider.js';
import { listingCalendarStreamId } from '../../../src/domain/listing-calendar/listing-calendar.decider.js';
import { paymentStreamId } from '../../../src/domain/payment/payment.decider.js';
import { streamIdOf } from '../../../src/domain/user/user.decider.js';
import type { Actor } from '../../../src/domain/shared/actor.js';
import { as } from '../../support/command-side.js';

/** What the payment process manager does for it: the processes are not wired in these tests. */
export const system: Actor = { id: 'system:test', roles: [] };

/**
 * Payment initiated and succeeded, booking paid, dates booked, booking confirmed: the events a
 * paid booking leaves behind.
 */
export async function payBooking(side: CommandSide, bookingId: string, paymentId = `pay-${bookingId}`): Promise<void> {
  const { state } = await side.handlers.booking.read(bookingStreamId(bookingId));
  if (!isRecorded(state)) throw new Error(`no booking ${bookingId}`);
  const { total: amount, currency, listingId } = state.booking;
  const payment = paymentStreamId(paymentId);
  await side.handlers.payment.handle(payment, { type: 'InitiatePayment', data: { paymentId, bookingId, providerIntentId: `pi_${paymentId}`, amount, currency } }, as(system));
  await side.handlers.payment.handle(payment, { type: 'RecordPaymentSucceeded', data: { paymentId, providerEventId: `evt_ok_${paymentId}`, amount, currency } }, as(system));
  await side.handlers.booking.handle(bookingStreamId(bookingId), { type: 'MarkBookingPaid', data: { bookingId, paymentId, amount, currency } }, as(system));
  await side.handlers.listingCalendar.handle(listingCalendarStreamId(listingId), { type: 'BookDates', data: { listingId, bookingId } }, as(system));
  await side.handlers.booking.handle(bookingStreamId(bookingId), { type: 'ConfirmBooking', data: { bookingId } }, as(system));
}

export async function paidBooking(
  side: CommandSide,
  input: { listingId: string; startDate: string; endDate: string },
  consumer: Actor,
): Promise<string> {
  const { id } = await requestBooking(side, input, as(consumer));
  await payBooking(side, id);
  return id;
}

/** What a signup appends, without the credentials: a user stream with `UserRegistered`. */
export async function registerUser(side: CommandSide, actor: Actor, name: string): Promise<void> {
  const roles = actor.roles.filter((role) => role !== 'AUDITOR');
  await side.handlers.user.handle(
    streamIdOf(actor.id),
    { type: 'RegisterUser', data: { userId: actor.id, email: `${actor.id}@example.test`, name, roles, registeredBy: null } },
    as(actor),
  );
}
