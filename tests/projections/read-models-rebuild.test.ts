import { isMade } from '../../src/domain/appointment/appointment.decider.js';
import fc from 'fast-check';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookAppointment, cancelAppointment, completeAppointment, rescheduleAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import { cancelBooking, completeBooking, releaseDates, requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import type { CommandSide } from '../../src/application/command-handlers.js';
import { createListing, setListingActive, updateListing } from '../../src/application/listings/listing.use-cases.js';
import type { RecordedEvent } from '../../src/application/ports/event-store.js';
import { submitReview } from '../../src/application/reviews/review.use-cases.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { bookingStreamId, isRecorded } from '../../src/domain/booking/booking.decider.js';
import { paymentStreamId } from '../../src/domain/payment/payment.decider.js';
import { reviewStreamId } from '../../src/domain/review/review.decider.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { readModelProjections } from '../../src/projections/read-models.js';
import { requestRebuild, withSearchPath } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import { readSchema, type Projection } from '../../src/projections/runtime/projection.js';
import { admin, as, consumer, doctor, everyMorning, listingInput, otherConsumer, otherDoctor, owner, patient } from '../support/command-side.js';
import { activeCheckpoint, eventually } from './support/runtime-harness.js';
import { allEvents, startReadModels, type ReadModelHarness } from './support/read-models.harness.js';
import { tablesOf } from '../support/read-model-tables.js';
import { payBooking, registerUser, system } from './support/scenarios.js';

const otherOwner: Actor = { id: 'owner-2', roles: ['OWNER'] };
const otherPatient: Actor = { id: 'patient-2', roles: ['PATIENT'] };
const consumers = [consumer, otherConsumer];
const patients = [patient, otherPatient];
const doctors = [doctor, otherDoctor];

/** What a history refers to: indexes into what earlier steps created, taken modulo their count. */
type World = { listings: string[]; bookings: string[]; appointments: string[] };

/** Non-negative: the `index`-th item, wrapping; negative: counted from the end (what the opening just made). */
const pick = <T>(items: readonly T[], index: number): T | undefined =>
  items.length === 0 ? undefined : index < 0 ? items.at(Math.max(index, -items.length)) : items[index % items.length];

const step = fc.oneof(
  fc.record({ kind: fc.constant('list' as const), owner: fc.nat(1), price: fc.integer({ min: 1_000, max: 30_000 }), category: fc.constantFrom('venue', 'cabin') }),
  fc.record({ kind: fc.constant('reprice' as const), listing: fc.nat(), price: fc.integer({ min: 1_000, max: 30_000 }), title: fc.constantFrom('Barn', 'Loft', 'Flat') }),
  fc.record({ kind: fc.constant('toggle' as const), listing: fc.nat(), active: fc.boolean() }),
  fc.record({ kind: fc.constant('book' as const), listing: fc.nat(), who: fc.nat(1), offset: fc.integer({ min: 1, max: 20 }), nights: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('pay' as const), booking: fc.nat() }),
  fc.record({ kind: fc.constant('cancel' as const), booking: fc.nat(), byOwner: fc.boolean() }),
  fc.record({ kind: fc.constant('expire' as const), booking: fc.nat() }),
  fc.record({ kind: fc.constant('complete' as const), booking: fc.nat() }),
  fc.record({ kind: fc.constant('review' as const), booking: fc.nat(), rating: fc.integer({ min: 1, max: 5 }), hide: fc.boolean() }),
  fc.record({ kind: fc.constant('refund' as const), booking: fc.nat(), amount: fc.integer({ min: 1, max: 1_000 }) }),
  fc.record({ kind: fc.constant('appoint' as const), who: fc.nat(1), doctor: fc.nat(1), day: fc.integer({ min: 1, max: 5 }), slot: fc.nat(5) }),
  fc.record({ kind: fc.constant('moveAppointment' as const), appointment: fc.nat(), slot: fc.nat(5) }),
  fc.record({ kind: fc.constant('endAppointment' as const), appointment: fc.nat(), complete: fc.boolean() }),
  fc.record({ kind: fc.constant('wait' as const), minutes: fc.integer({ min: 1, max: 3 * 24 * 60 }) }),
);
type Step = typeof step extends fc.Arbitrary<infer S> ? S : never;

/** Every run starts by giving the random steps something to act on: listings, a stay reviewed, an appointment. */
const opening: Step[] = [
  { kind: 'list', owner: 0, price: 10_000, category: 'venue' },
  { kind: 'list', owner: 1, price: 5_000, category: 'cabin' },
  { kind: 'book', listing: -1, who: 0, offset: 2, nights: 2 },
  { kind: 'pay', booking: -1 },
  { kind: 'complete', booking: -1 },
  { kind: 'review', booking: -1, rating: 4, hide: true },
  { kind: 'book', listing: -2, who: 1, offset: 3, nights: 1 },
  { kind: 'appoint', who: 0, doctor: 0, day: 1, slot: 0 },
];

async function bookingOf(side: CommandSide, bookingId: string) {
  const { state } = await side.handlers.booking.read(bookingStreamId(bookingId));
  if (!isRecorded(state)) throw new DomainError('not-found', 'no booking');
  return state;
}

/** Runs one step through the real use cases; a refusal by the rules is a fine outcome too. */
async function run(h: ReadModelHarness, world: World, s: Step): Promise<void> {
  const { side, clock } = h;
  const now = () => clock.now().getTime();
  const day = (offset: number) => new Date(now() + offset * 86_400_000).toISOString().slice(0, 10);
  const slotStart = (dayOffset: number, slot: number) => `${day(dayOffset)}T${String(9 + Math.floor(slot / 2)).padStart(2, '0')}:${slot % 2 === 0 ? '00' : '30'}:00Z`;
  const booking = 'booking' in s ? pick(world.bookings, s.booking) : undefined;
  const listing = 'listing' in s ? pick(world.listings, s.listing) : undefined;
  const appointment = 'appointment' in s ? pick(world.appointments, s.appointment) : undefined;
  try {
    switch (s.kind) {
      case 'list':
        world.listings.push((await createListing(side, { ...listingInput, category: s.category, pricePerDay: s.price }, as(s.owner === 0 ? owner : otherOwner))).id);
        return;
      case 'reprice':
        if (listing) await updateListing(side, listing, { pricePerDay: s.price, title: s.title }, as(admin));
        return;
      case 'toggle':
        if (listing) await setListingActive(side, listing, s.active, as(admin));
        return;
      case 'book':
        if (listing) world.bookings.push((await requestBooking(side, { listingId: listing, startDate: day(s.offset), endDate: day(s.offset + s.nights) }, as(consumers[s.who] ?? consumer))).id);
        return;
      case 'pay':
        if (booking) await payBooking(side, booking, `pay-${booking}`);
        return;
      case 'cancel':
        if (booking) {
          const state = await bookingOf(side, booking);
          await cancelBooking(side, booking, { reason: 'changed plans' }, as(s.byOwner ? { id: state.booking.ownerId, roles: ['OWNER'] } : { id: state.booking.consumerId, roles: ['CONSUMER'] }));
        }
        return;
      case 'expire':
        if (booking) {
          clock.advance(16 * 60_000);
          const result = await side.handlers.booking.handle(bookingStreamId(booking), { type: 'ExpireBooking', data: { bookingId: booking, now: clock.now().toISOString() } }, as(system));
          await releaseDates(side, result.state, 'expired', as(system));
        }
        return;
      case 'complete':
        if (booking) {
          const state = await bookingOf(side, booking);
          clock.advance(Math.max(0, Date.parse(`${state.booking.endDate}T00:00:00Z`) - now()));
          await completeBooking(side, booking, as({ id: state.booking.ownerId, roles: ['OWNER'] }));
        }
        return;
      case 'review':
        if (booking) {
          const state = await bookingOf(side, booking);
          const author = { id: state.booking.consumerId, roles: ['CONSUMER' as const] };
          await submitReview(side, state.booking.listingId, { bookingId: booking, rating: s.rating, comment: 'ok' }, as(author));
          if (s.hide) await side.handlers.review.handle(reviewStreamId(booking), { type: 'HideReview', data: { bookingId: booking, actor: admin, reason: 'spam' } }, as(admin));
        }
        return;
      case 'refund':
        if (booking) {
          const payment = paymentStreamId(`pay-${booking}`);
          const refundId = `r-${booking}-${now()}`;
          await side.handlers.payment.handle(payment, { type: 'RequestRefund', data: { paymentId: `pay-${booking}`, refundId, amount: s.amount } }, as(system));
          await side.handlers.payment.handle(payment, { type: 'RecordRefundSucceeded', data: { paymentId: `pay-${booking}`, refundId, providerEventId: `evt-${refundId}` } }, as(system));
        }
        return;
      case 'appoint':
        world.appointments.push(
          (await bookAppointment(side, { doctorId: (doctors[s.doctor] ?? doctor).id, start: slotStart(s.day, s.slot), reason: 'checkup' }, as(patients[s.who] ?? patient))).id,
        );
        return;
      case 'moveAppointment':
        if (appointment) await rescheduleAppointment(side, appointment, { start: slotStart(6, s.slot) }, as(admin));
        return;
      case 'endAppointment':
        if (appointment) {
          if (!s.complete) await cancelAppointment(side, appointment, { reason: 'no longer needed' }, as(admin));
          else {
            clock.advance(8 * 86_400_000);
            const { state } = await side.handlers.appointment.read(`appointment-${appointment}`);
            if (isMade(state)) await completeAppointment(side, appointment, { notes: 'fine' }, as({ id: state.doctorId, roles: ['DOCTOR'] }));
          }
        }
        return;
      case 'wait':
        clock.advance(s.minutes * 60_000);
        return;
      default: {
        const _exhaustive: never = s;
        return _exhaustive;
      }
    }
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
  }
}

/** A fresh copy of `projection` built from the first event, in batches of `chunk`. */
async function rebuildFromZero(db: Kysely<unknown>, projection: Projection, events: readonly RecordedEvent[], chunk: number): Promise<string> {
  const schema = `rebuilt_${projection.name}`;
  await db.transaction().execute(async (trx) => {
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(trx);
    await sql`create schema ${sql.id(schema)}`.execute(trx);
    await withSearchPath(trx, schema, () => projection.migrate(trx));
  });
  for (let start = 0; start < events.length; start += chunk) {
    await db.transaction().execute((trx) => withSearchPath(trx, schema, () => projection.apply(trx, events.slice(start, start + chunk))));
  }
  return schema;
}

describe('every read model: a rebuild from the first event equals the incrementally built tables', () => {
  let h: ReadModelHarness;
  const world: World = { listings: [], bookings: [], appointments: [] };

  beforeAll(async () => {
    h = await startReadModels(readModelProjections);
    for (const [actor, name] of [[doctor, 'Dr Ada'], [otherDoctor, 'Dr Bea'], [patient, 'Pat'], [consumer, 'Cam']] as const) await registerUser(h.side, actor, name);
    for (const d of doctors) await setSchedule(h.side, d.id, everyMorning, as(d));
  });
  afterAll(() => h.close());

  // Five histories of up to 26 commands, each rebuilt twice per read model: about 8 s on an idle
  // machine, over 30 s when the suite shares it with other work, hence more than the default.
  it('after any short history of commands', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 8, maxLength: 20 }), fc.integer({ min: 1, max: 40 }), async (history, chunk) => {
        for (const s of [...opening, ...history]) await run(h, world, s);
        await h.settle();
        const events = await allEvents(h.harness.revealed);
        // One event per batch as well as a random batch size: every handler must carry state across batches.
        for (const projection of readModelProjections) {
          const incremental = await tablesOf(h.harness.db, readSchema(projection.name));
          for (const size of [1, chunk]) {
            const rebuilt = await rebuildFromZero(h.harness.db, projection, events, size);
            expect(await tablesOf(h.harness.db, rebuilt), `${projection.name} in batches of ${size}`).toEqual(incremental);
          }
        }
      }),
      { numRuns: 5 },
    );
    // The histories reached every read model, so the equality above compared something.
    for (const projection of readModelProjections) {
      const tables = await tablesOf(h.harness.db, readSchema(projection.name));
      expect(Object.values(tables).some((rows) => rows.length > 0), projection.name).toBe(true);
    }
  }, 120_000);

  it('and the runtime\'s own rebuild swaps in identical tables', async () => {
    const before = new Map<string, unknown>();
    for (const projection of readModelProjections) before.set(projection.name, await tablesOf(h.harness.db, readSchema(projection.name)));
    for (const projection of readModelProjections) {
      const previous = await activeCheckpoint(h.harness.db, projection.name);
      await requestRebuild(h.harness.db, projection.name);
      await eventually(async () => ((await activeCheckpoint(h.harness.db, projection.name))?.generation ?? 0) > (previous?.generation ?? 0), 15_000, `${projection.name} rebuilt`);
      expect(await tablesOf(h.harness.db, readSchema(projection.name)), projection.name).toEqual(before.get(projection.name));
    }
  });
});
