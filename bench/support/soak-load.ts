import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { comparePositions, parsePosition } from '../../src/application/ports/position.js';
import { commandResultSchema } from '../../src/infrastructure/http/command-result.js';
import { problemTypeBase } from '../../src/infrastructure/http/problem.js';
import type { FakeStripeServer } from '../../tests/stripe/support/fake-stripe-server.js';
import { intentObject, stripeEvent, stripeSignature } from '../../tests/stripe/support/stripe-events.js';
import { sleep } from '../../src/application/sleep.js';
import { token } from './bench-auth.js';
import type { Reply, SoakRequest, Traffic } from './soak-traffic.js';

// The soak's users: consumers who book, pay (through Stripe's signed webhook) and cancel;
// patients who book, reschedule and cancel appointments; people browsing. Each journey reads its
// own writes with `Consistency-Position`. What was accepted goes into the ledger, which the
// checks hold the event log against afterwards.

const day = 86_400_000;
/** Contended on purpose: a few listings and doctors that many journeys want at once. */
const hotListings = 3;
const hotDoctors = 2;
const slotsPerDay = 47;
const patientPool = 20;
/**
 * The most head start (ms) a booking raced against its patient's reschedule gets, in half the
 * races: the reschedule moves the patient's time first, the booking takes its doctor's slot
 * first, so started together the reschedule nearly always wins (31 races of 32 in a run), and
 * given up to this the booking nearly always does (14 of 14).
 */
const bookingHeadStartMs = 250;

export type World = {
  readonly listings: readonly { readonly id: string; readonly ownerId: string }[];
  readonly doctorIds: readonly string[];
  readonly adminId: string;
  /** First day any journey books: far enough ahead to be "future" in every time zone all run. */
  readonly firstDay: number;
};

/** An accepted command as the service reported it: where its last event is. */
export type AcceptedCommand = { readonly route: string; readonly streamId: string; readonly version: number | undefined; readonly position: string };

export type BookingRecord = { readonly listingId: string; cancelled: boolean; readonly paymentIds: string[] };
export type PaymentRecord = { readonly bookingId: string; webhookAccepted: boolean };
export type AppointmentRecord = { readonly doctorId: string; readonly patientId: string; start: string; reschedules: number; cancelled: boolean };

export class Ledger {
  readonly accepted: AcceptedCommand[] = [];
  readonly bookings = new Map<string, BookingRecord>();
  readonly payments = new Map<string, PaymentRecord>();
  readonly appointments = new Map<string, AppointmentRecord>();
  readonly consumers: string[] = [];
  readonly patients: string[] = [];
  /**
   * The highest position a command answered with: what browsing readers ask the read models for.
   * The highest, not the last answered: answers arrive out of order (a replay delays one).
   */
  latestPosition: string | undefined;
  /** Reads that waited for a position (and got 200 from the wait) but did not find the write. */
  readonly missedWrites: string[] = [];
  /** Answers that break the HTTP contract otherwise (a replay that is no replay, a body of the wrong shape). */
  readonly violations: string[] = [];
  readYourWrites = 0;
  /** Webhook deliveries the service accepted (200); any other answer is a violation. */
  webhookDeliveries = 0;
  /**
   * Reschedules by outcome: `refused` are the 409s, `undone` those of them that had moved
   * something and moved it back (the 409 names an `Event-Position`); `toHotDay` were sent to the
   * contended day by a returning patient, beside a booking of the same patient at the same time.
   * Of those, `lostToBooking` were refused for the patient's time (`patient-overlap`) while the
   * booking beside was accepted: the race's own refusal; `bookingBesideRefused` won it, the
   * booking beside refused for the patient's time instead.
   */
  readonly reschedules = { accepted: 0, refused: 0, undone: 0, toHotDay: 0, lostToBooking: 0, bookingBesideRefused: 0 };
  /** Webhooks delivered again: right after the first, at the same moment as it, and after the paid booking was cancelled. */
  readonly duplicateWebhooks = { inTurn: 0, atOnce: 0, afterCancellation: 0 };
}

export type LoadContext = { readonly traffic: Traffic; readonly ledger: Ledger; readonly world: World; readonly stripe: FakeStripeServer; readonly webhookSecret: string };

const startedPaymentSchema = z.object({ paymentId: z.string(), position: z.string() });

const chance = (p: number) => Math.random() < p;
const randomInt = (n: number) => Math.floor(Math.random() * n);
function pick<T>(items: readonly T[]): T {
  const item = items[randomInt(items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}
const isoDate = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Parses a command's answer, records it, and reports a body that breaks the contract. */
function accept(ctx: LoadContext, route: string, reply: Reply): z.infer<typeof commandResultSchema> | undefined {
  const parsed = commandResultSchema.safeParse(reply.json);
  if (!parsed.success) {
    ctx.ledger.violations.push(`${route}: ${reply.status} with a body that is no command result`);
    return undefined;
  }
  const { streamId, version, position } = parsed.data;
  ctx.ledger.accepted.push({ route, streamId, version, position });
  ctx.ledger.latestPosition = ctx.ledger.latestPosition === undefined ? position : higher(ctx.ledger.latestPosition, position);
  return parsed.data;
}

/** The later of two positions the service answered; the one answered if either is no position. */
function higher(a: string, answered: string): string {
  const [first, second] = [parsePosition(a), parsePosition(answered)];
  return first && second && comparePositions(first, second) > 0 ? a : answered;
}

/** A command with a fresh Idempotency-Key; now and then sent again, which must replay the first answer. */
async function command(ctx: LoadContext, request: SoakRequest): Promise<Reply | undefined> {
  const withKey = { ...request, headers: { ...request.headers, 'idempotency-key': randomUUID() } };
  const reply = await ctx.traffic.send(withKey);
  if (reply && reply.status < 300 && chance(0.1)) {
    const again = await ctx.traffic.send({ ...withKey, route: `${request.route} (replayed)` });
    const same = again && again.status === reply.status && JSON.stringify(again.json) === JSON.stringify(reply.json);
    if (again && again.status < 500 && (!same || again.headers.get('idempotent-replayed') !== 'true')) {
      ctx.ledger.violations.push(`${request.route}: a repeated Idempotency-Key answered ${again.status} ${JSON.stringify(again.json)} instead of replaying ${JSON.stringify(reply.json)}`);
    }
  }
  return reply;
}

/**
 * A read that waits for `position`; 404 after the wait means a write went missing, and so does a
 * 200 whose body `shows` says lacks the write (for a list, which answers 200 either way). A 503
 * `not-caught-up` (the wait ran out) is no answer either way: `Traffic` keeps it, and the check
 * counts it missed unless a chaos step excuses it.
 */
async function readOwnWrite(
  ctx: LoadContext,
  request: Omit<SoakRequest, 'api' | 'method'>,
  position: string,
  shows: (json: unknown) => boolean = () => true,
): Promise<void> {
  const reply = await ctx.traffic.send({ ...request, api: 'query', method: 'GET', headers: { 'consistency-position': position } });
  if (!reply) return;
  if (reply.status === 200 && shows(reply.json)) ctx.ledger.readYourWrites += 1;
  else if (reply.status === 200 || reply.status === 404) ctx.ledger.missedWrites.push(`${request.path} after ${position}`);
}

const slotsPage = z.object({ items: z.array(z.object({ start: z.string() })) });

function stayDates(world: World, hot: boolean): { startDate: string; endDate: string } {
  // `firstDay` is two days on, and every night of a stay falls at most 365 days ahead: spread over the
  // year, the last night at most 2 + 359 + 2 days on.
  const offset = hot ? randomInt(10) : randomInt(360);
  const start = world.firstDay + offset * day;
  return { startDate: isoDate(start), endDate: isoDate(start + (1 + randomInt(3)) * day) };
}

async function bookingJourney(ctx: LoadContext): Promise<void> {
  const { world, ledger } = ctx;
  const hot = chance(0.2);
  const listing = hot ? pick(world.listings.slice(0, hotListings)) : pick(world.listings);
  const consumerId = randomUUID();
  const bearer = token(consumerId, ['CONSUMER']);
  const route = 'POST /v1/bookings';
  const reply = await command(ctx, { api: 'command', method: 'POST', route, path: '/v1/bookings', bearer, body: { listingId: listing.id, ...stayDates(world, hot) } });
  if (reply?.status !== 201) return;
  const booked = accept(ctx, route, reply);
  if (!booked) return;
  const booking: BookingRecord = { listingId: listing.id, cancelled: false, paymentIds: [] };
  ledger.bookings.set(booked.id, booking);
  ledger.consumers.push(consumerId);
  await readOwnWrite(ctx, { route: 'GET /v1/bookings/:id', path: `/v1/bookings/${booked.id}`, bearer }, booked.position);
  const paid = chance(0.7) ? await pay(ctx, booked.id, booking, bearer) : undefined;
  if (chance(0.25)) await cancelBooking(ctx, booked.id, booking, bearer);
  // Stripe redelivers when it missed our answer, whenever that is: here after the refund began.
  if (paid && booking.cancelled && chance(0.3)) {
    ctx.ledger.duplicateWebhooks.afterCancellation += 1;
    await deliverWebhook(ctx, paid.payment, paid.payload);
  }
}

/**
 * Starts the payment, has the customer pay at "Stripe", and delivers Stripe's signed webhook,
 * sometimes twice as Stripe may: in turn, or at once (a retry crossing a slow first answer).
 * Returns what was delivered, for a redelivery later.
 */
async function pay(ctx: LoadContext, bookingId: string, booking: BookingRecord, bearer: string): Promise<{ payment: PaymentRecord; payload: string } | undefined> {
  const route = 'POST /v1/bookings/:id/payments';
  const reply = await command(ctx, { api: 'command', method: 'POST', route, path: `/v1/bookings/${bookingId}/payments`, bearer, body: {} });
  if (reply?.status !== 201) return;
  const started = startedPaymentSchema.safeParse(reply.json);
  if (!started.success) {
    ctx.ledger.violations.push(`${route}: 201 without a payment id and position`);
    return;
  }
  const { paymentId, position } = started.data;
  ctx.ledger.accepted.push({ route, streamId: `payment-${paymentId}`, version: undefined, position });
  booking.paymentIds.push(paymentId);
  const payment: PaymentRecord = { bookingId, webhookAccepted: false };
  ctx.ledger.payments.set(paymentId, payment);
  const intent = ctx.stripe.intentsFor(paymentId).at(-1);
  if (!intent) {
    ctx.ledger.violations.push(`${route}: payment ${paymentId} has no intent at the gateway`);
    return;
  }
  ctx.stripe.setIntentStatus(intent.id, 'succeeded');
  const fields = { amount: intent.amount, amount_received: intent.amount, currency: intent.currency };
  const payload = stripeEvent(`evt_${randomUUID()}`, 'payment_intent.succeeded', intentObject(intent.id, paymentId, fields));
  const duplicate = chance(0.2);
  if (duplicate && chance(0.5)) {
    ctx.ledger.duplicateWebhooks.atOnce += 1;
    await Promise.all([deliverWebhook(ctx, payment, payload), deliverWebhook(ctx, payment, payload)]);
  } else {
    await deliverWebhook(ctx, payment, payload);
    if (duplicate) {
      ctx.ledger.duplicateWebhooks.inTurn += 1;
      await deliverWebhook(ctx, payment, payload);
    }
  }
  return { payment, payload };
}

/** One delivery of Stripe's signed `payload` for `payment`. */
async function deliverWebhook(ctx: LoadContext, payment: PaymentRecord, payload: string): Promise<void> {
  const headers = { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': stripeSignature(payload, ctx.webhookSecret) };
  const route = 'POST /v1/webhooks/stripe';
  const delivered = await ctx.traffic.send({ api: 'command', method: 'POST', route, path: '/v1/webhooks/stripe', rawBody: payload, headers });
  // Stripe takes anything but a 2xx for a failure and delivers again for days; the service answers 200 to every delivery it takes.
  if (delivered?.status !== 200) {
    ctx.ledger.violations.push(`${route}: a delivery for the payment of booking ${payment.bookingId} answered ${delivered?.status ?? 'nothing'}, not 200`);
    return;
  }
  ctx.ledger.webhookDeliveries += 1;
  payment.webhookAccepted = true;
}

async function cancelBooking(ctx: LoadContext, bookingId: string, booking: BookingRecord, bearer: string): Promise<void> {
  const route = 'POST /v1/bookings/:id/cancel';
  const reply = await command(ctx, { api: 'command', method: 'POST', route, path: `/v1/bookings/${bookingId}/cancel`, bearer, body: { reason: 'plans changed' } });
  if (reply?.status !== 200 || !accept(ctx, route, reply)) return;
  booking.cancelled = true;
}

function slotStart(world: World, hot: boolean): string {
  const dayOffset = hot ? 0 : randomInt(90);
  return new Date(world.firstDay + dayOffset * day + randomInt(slotsPerDay) * 30 * 60_000).toISOString();
}

async function appointmentJourney(ctx: LoadContext): Promise<void> {
  const { world, ledger } = ctx;
  const hot = chance(0.2);
  const doctorId = hot ? pick(world.doctorIds.slice(0, hotDoctors)) : pick(world.doctorIds);
  // A few patients come back often, so that a patient's own overlapping times get refused too.
  const returning = chance(0.25) && ledger.patients.length > patientPool;
  const patientId = returning ? pick(ledger.patients.slice(0, patientPool)) : randomUUID();
  const bearer = token(patientId, ['PATIENT']);
  const start = slotStart(world, hot);
  const route = 'POST /v1/appointments';
  const reply = await command(ctx, { api: 'command', method: 'POST', route, path: '/v1/appointments', bearer, body: { doctorId, start, reason: 'soak check-up' } });
  if (reply?.status !== 201) return;
  const booked = accept(ctx, route, reply);
  if (!booked) return;
  const appointment: AppointmentRecord = { doctorId, patientId, start, reschedules: 0, cancelled: false };
  ledger.appointments.set(booked.id, appointment);
  ledger.patients.push(patientId);
  await readOwnWrite(ctx, { route: 'GET /v1/appointments/:id', path: `/v1/appointments/${booked.id}`, bearer }, booked.position);
  // The position of our own last write: one answered to another journey may be below it.
  let mine = booked.position;
  const rescheduled = chance(0.4) ? await reschedule(ctx, booked.id, appointment, bearer, returning) : undefined;
  if (rescheduled) mine = higher(mine, rescheduled);
  const cancelled = chance(0.25) ? await cancelAppointment(ctx, booked.id, appointment, bearer) : undefined;
  if (cancelled) mine = higher(mine, cancelled);
  const from = new Date(Date.parse(appointment.start) - (Date.parse(appointment.start) % day));
  const slotsPath = `/v1/doctors/${doctorId}/slots?from=${from.toISOString()}&to=${new Date(from.getTime() + day).toISOString()}&limit=100`;
  // The day's free slots, read after our writes: the slot the appointment holds is not among them.
  // A refused reschedule that moved the slot and restored it answered the restoring's position.
  const judged = !appointment.cancelled;
  const holdsItsSlot = (json: unknown) => {
    const page = slotsPage.safeParse(json);
    return page.success && (!judged || !page.data.items.some((slot) => Date.parse(slot.start) === Date.parse(appointment.start)));
  };
  await readOwnWrite(ctx, { route: 'GET /v1/doctors/:id/slots', path: slotsPath }, mine, holdsItsSlot);
}

/**
 * The position of the accepted reschedule, or of a refused one that moved the patient's time
 * (and maybe held a slot) and undid it (its 409's `Event-Position`); `undefined` if there is none.
 *
 * A returning patient's (`toHotDay`) goes to the contended day, and books another doctor at the
 * same time, at once or a moment before (`bookingHeadStartMs`): the two race for the patient's
 * time, and one is refused. A reschedule refused after its time moved (the slot on the contended
 * day taken) moves the time back: the undo paths. This race found a double booking once, when
 * the slot moved before the time.
 */
async function reschedule(ctx: LoadContext, appointmentId: string, appointment: AppointmentRecord, bearer: string, toHotDay: boolean): Promise<string | undefined> {
  let start = slotStart(ctx.world, toHotDay);
  // Moving to the slot it holds changes nothing and appends nothing: not a reschedule to count.
  while (Date.parse(start) === Date.parse(appointment.start)) start = slotStart(ctx.world, toHotDay);
  const route = 'POST /v1/appointments/:id/reschedule';
  const move = async () => {
    if (toHotDay && chance(0.5)) await sleep(randomInt(bookingHeadStartMs));
    return command(ctx, { api: 'command', method: 'POST', route, path: `/v1/appointments/${appointmentId}/reschedule`, bearer, body: { start } });
  };
  if (toHotDay) ctx.ledger.reschedules.toHotDay += 1;
  const [besideReply, reply] = await Promise.all([toHotDay ? bookBeside(ctx, appointment.patientId, appointment.doctorId, start) : undefined, move()]);
  if (besideReply && refusedAs(besideReply, 'patient-overlap')) ctx.ledger.reschedules.bookingBesideRefused += 1;
  if (reply?.status === 409) {
    ctx.ledger.reschedules.refused += 1;
    if (besideReply?.status === 201 && refusedAs(reply, 'patient-overlap')) ctx.ledger.reschedules.lostToBooking += 1;
    const undone = refusedAt(ctx, route, reply);
    if (undone) ctx.ledger.reschedules.undone += 1;
    return undone;
  }
  const moved = reply?.status === 200 ? accept(ctx, route, reply) : undefined;
  if (!moved) return undefined;
  ctx.ledger.reschedules.accepted += 1;
  appointment.reschedules += 1;
  appointment.start = start;
  return moved.position;
}

/** Books `patientId` with a doctor other than `besideDoctorId` at `start`, into the ledger if accepted; its answer. */
async function bookBeside(ctx: LoadContext, patientId: string, besideDoctorId: string, start: string): Promise<Reply | undefined> {
  // Not a contended doctor, whose day is full: the patient's time is what the two race for.
  const doctorId = pick(ctx.world.doctorIds.slice(hotDoctors).filter((id) => id !== besideDoctorId));
  const route = 'POST /v1/appointments';
  const reply = await command(ctx, { api: 'command', method: 'POST', route, path: '/v1/appointments', bearer: token(patientId, ['PATIENT']), body: { doctorId, start, reason: 'soak second opinion' } });
  const booked = reply?.status === 201 ? accept(ctx, route, reply) : undefined;
  if (booked) ctx.ledger.appointments.set(booked.id, { doctorId, patientId, start, reschedules: 0, cancelled: false });
  return reply;
}

const problemSchema = z.object({ type: z.string() });

/** A 409 whose problem type is `code` (`patient-overlap`: the patient has another appointment then). */
function refusedAs(reply: Reply, code: string): boolean {
  const problem = problemSchema.safeParse(reply.json);
  return reply.status === 409 && problem.success && problem.data.type === `${problemTypeBase}${code}`;
}

/** A refusal's `Event-Position`: none if it appended nothing, and a violation if it is no position. */
function refusedAt(ctx: LoadContext, route: string, reply: Reply): string | undefined {
  const position = reply.headers.get('event-position');
  if (position === null) return undefined;
  if (parsePosition(position)) return position;
  ctx.ledger.violations.push(`${route}: ${reply.status} with an Event-Position that is no position`);
  return undefined;
}

/** The position of the accepted cancellation, `undefined` if there is none. */
async function cancelAppointment(ctx: LoadContext, appointmentId: string, appointment: AppointmentRecord, bearer: string): Promise<string | undefined> {
  const route = 'POST /v1/appointments/:id/cancel';
  const reply = await command(ctx, { api: 'command', method: 'POST', route, path: `/v1/appointments/${appointmentId}/cancel`, bearer, body: { reason: 'feeling better' } });
  const cancelled = reply?.status === 200 ? accept(ctx, route, reply) : undefined;
  if (!cancelled) return undefined;
  appointment.cancelled = true;
  return cancelled.position;
}

/** Reads nobody wrote just before: listings, a calendar, someone's bookings or appointments. */
async function browse(ctx: LoadContext): Promise<void> {
  const { world, ledger, traffic } = ctx;
  const position = chance(0.5) ? ledger.latestPosition : undefined;
  const headers = position ? { 'consistency-position': position } : undefined;
  const get = (route: string, path: string, bearer?: string) =>
    traffic.send({ api: 'query', method: 'GET', route, path, ...(bearer ? { bearer } : {}), ...(headers ? { headers } : {}) });
  switch (randomInt(4)) {
    case 0:
      await get('GET /v1/listings', `/v1/listings?category=${chance(0.5) ? 'venue' : 'equipment'}&limit=20`);
      return;
    case 1: {
      const from = isoDate(world.firstDay + randomInt(300) * day);
      await get('GET /v1/listings/:id/availability', `/v1/listings/${pick(world.listings).id}/availability?from=${from}&to=${isoDate(Date.parse(from) + 30 * day)}`);
      return;
    }
    case 2:
      if (ledger.consumers.length > 0) await get('GET /v1/bookings/me', '/v1/bookings/me?limit=20', token(pick(ledger.consumers), ['CONSUMER']));
      return;
    default:
      if (ledger.patients.length > 0) await get('GET /v1/appointments/me', '/v1/appointments/me?limit=20', token(pick(ledger.patients), ['PATIENT']));
  }
}

/** One user's next journey: bookings and payments, appointments, or browsing. */
export async function nextJourney(ctx: LoadContext): Promise<void> {
  const roll = Math.random();
  if (roll < 0.4) await bookingJourney(ctx);
  else if (roll < 0.75) await appointmentJourney(ctx);
  else await browse(ctx);
}

/** Listings and doctors with schedules open every day, made through the command API like any client would. */
export async function seedWorld(traffic: Traffic, counts: { listings: number; doctors: number }): Promise<World> {
  const listings: { id: string; ownerId: string }[] = [];
  for (let i = 0; i < counts.listings; i++) {
    const ownerId = randomUUID();
    const body = { title: `Soak listing ${i}`, description: 'soak', category: i % 2 ? 'venue' : 'equipment', location: 'Lyon', capacity: 4, pricePerDay: 10_000, currency: 'EUR' };
    const reply = await traffic.send({ api: 'command', method: 'POST', route: 'POST /v1/listings', path: '/v1/listings', bearer: token(ownerId, ['OWNER']), body });
    const created = commandResultSchema.safeParse(reply?.json);
    if (reply?.status !== 201 || !created.success) throw new Error(`could not create a listing: ${reply?.status} ${JSON.stringify(reply?.json)}`);
    listings.push({ id: created.data.id, ownerId });
  }
  const allDay = [{ from: '00:00', to: '23:30' }];
  const weeklyHours = { mon: allDay, tue: allDay, wed: allDay, thu: allDay, fri: allDay, sat: allDay, sun: allDay };
  const doctorIds = Array.from({ length: counts.doctors }, () => randomUUID());
  for (const doctorId of doctorIds) {
    const body = { timeZone: 'UTC', slotMinutes: 30, weeklyHours, daysOff: [] };
    const reply = await traffic.send({ api: 'command', method: 'PUT', route: 'PUT /v1/doctors/:id/schedule', path: `/v1/doctors/${doctorId}/schedule`, bearer: token(doctorId, ['DOCTOR']), body });
    if (reply?.status !== 200) throw new Error(`could not set a schedule: ${reply?.status} ${JSON.stringify(reply?.json)}`);
  }
  const today = Date.parse(`${isoDate(Date.now())}T00:00:00Z`);
  return { listings, doctorIds, adminId: randomUUID(), firstDay: today + 2 * day };
}
