import { beforeEach, describe, expect, it } from 'vitest';
import type { CommandSide } from '../../src/application/command-handlers.js';
import { bookAppointment, cancelAppointment, completeAppointment, markNoShow, rescheduleAppointment, slotFollows } from '../../src/application/appointments/appointment.use-cases.js';
import { cancelBooking, requestBooking } from '../../src/application/bookings/booking.use-cases.js';
import { createListing, setListingActive, updateListing } from '../../src/application/listings/listing.use-cases.js';
import { deterministicUuid } from '../../src/application/ids.js';
import { HoldExpiryProcess } from '../../src/application/process-managers/hold-expiry.process.js';
import type { SweepSummary } from '../../src/application/process-managers/sweeping-process.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { slotHoldOf, slotOf } from '../../src/domain/doctor-schedule/doctor-schedule.decider.js';
import { reservationOf } from '../../src/domain/patient-agenda/patient-agenda.decider.js';
import {
  admin,
  as,
  consumer,
  createTestSide,
  doctor,
  eventTypes,
  everyEventId,
  everyMorning,
  fakeClock,
  followAndSweep,
  InterruptibleStore,
  whereIsAppointment,
  listingInput,
  otherConsumer,
  otherDoctor,
  owner,
  patient,
  streamEvents,
} from '../support/command-side.js';
import { memoryVault } from '../support/personal-data.js';

const stay = { startDate: '2030-02-01', endDate: '2030-02-05' };
const nine = '2030-02-04T09:00:00.000Z';
const nineThirty = '2030-02-04T09:30:00.000Z';
const ten = '2030-02-04T10:00:00.000Z';
const otherPatient = { id: 'patient-2', roles: ['PATIENT' as const] };
const graceMs = 60_000;

describe('hold expiry process', () => {
  let store: InterruptibleStore;
  let clock: ReturnType<typeof fakeClock>;
  let side: CommandSide;
  /**
   * Another process on the same events (and the same key store). One process runs commands on a
   * stream one at a time, so a command that lands while one of `side`'s appends is held back
   * comes from another process.
   */
  let otherProcess: CommandSide;
  let listingId: string;
  let calendar: string;

  beforeEach(async () => {
    store = new InterruptibleStore();
    clock = fakeClock('2030-01-10T10:00:00Z');
    const vault = memoryVault();
    side = createTestSide(store, clock, 15, vault);
    otherProcess = createTestSide(store, clock, 15, vault);
    listingId = (await createListing(side, listingInput, as(owner))).id;
    calendar = `listingCalendar-${listingId}`;
    await setSchedule(side, doctor.id, everyMorning, as(doctor));
    await setSchedule(side, otherDoctor.id, everyMorning, as(otherDoctor));
  });

  /**
   * A process started now, as after a deploy or a crash: each turn reads what the log gained
   * since the last one (from the start, the first time), then sweeps, as `run` does.
   */
  function startProcess(): () => Promise<SweepSummary> {
    return startWatchedProcess().turn;
  }

  /** `startProcess`, with the process itself (for `pending`) and what it reported through `onError`. */
  function startWatchedProcess() {
    const errors: Array<{ error: unknown; what: string; retried: boolean }> = [];
    const process = new HoldExpiryProcess({ eventStore: store, side, orphanSlotGraceMs: graceMs, onError: (error, what, retried) => errors.push({ error, what, retried }) });
    const turn = followAndSweep(store, process);
    return { process, turn, errors };
  }

  /** Where the appointment, its doctor's slot and its patient's time each say it is. */
  const whereIs = (appointmentId: string) => whereIsAppointment(side, appointmentId, { doctorId: doctor.id, patientId: patient.id });

  const nothingPending = { holds: 0, slots: 0, times: 0, cancellations: 0, moves: 0, calendars: 0 };

  /** A process following the log from the start, past the grace period: it settles nothing, keeps nothing pending, appends nothing. */
  async function expectNothingToDoAfterGrace(): Promise<void> {
    const before = await everyEventId(store);
    const { process, turn } = startWatchedProcess();
    clock.advance(graceMs);

    expect(await turn()).toEqual({ progressed: 0, failed: 0 });

    expect(process.pending).toEqual(nothingPending);
    expect(await everyEventId(store)).toEqual(before);
  }

  /** A restarted process replays the whole log and sweeps: nothing new may be appended. */
  async function expectReplayToAppendNothing(): Promise<void> {
    const before = await everyEventId(store);
    clock.advance(graceMs);
    await startProcess()();
    expect(await everyEventId(store)).toEqual(before);
  }

  describe('given a lapsed hold that another consumer took over before the sweep', () => {
    /** The first consumer's hold lapses unpaid; the second holds the same dates, which releases it as expired. */
    async function takenOver() {
      const first = await requestBooking(side, { listingId, ...stay }, as(consumer));
      clock.advance(16 * 60_000);
      const second = await requestBooking(side, { listingId, ...stay }, as(otherConsumer));
      const released = (await streamEvents(store, calendar)).filter((event) => event.type === 'DatesReleased');
      expect(released).toMatchObject([{ data: { bookingId: first.id, reason: 'expired' } }]);
      return { first, second };
    }

    it('when the process was running, expires the first booking and leaves the second alone', async () => {
      const turn = startProcess();
      const first = await requestBooking(side, { listingId, ...stay }, as(consumer));
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
      clock.advance(16 * 60_000);
      const second = await requestBooking(side, { listingId, ...stay }, as(otherConsumer));

      await turn();

      expect(await eventTypes(store, first.streamId)).toEqual(['BookingRequested', 'BookingExpired']);
      expect(await eventTypes(store, second.streamId)).toEqual(['BookingRequested']);
      expect((await side.handlers.listingCalendar.read(calendar)).state.live).toMatchObject([{ bookingId: second.id, status: 'held' }]);
    });

    it('when the process was down, expires the first booking once it has replayed the log', async () => {
      const { first, second } = await takenOver();

      await startProcess()();

      expect(await eventTypes(store, first.streamId)).toEqual(['BookingRequested', 'BookingExpired']);
      expect(await eventTypes(store, second.streamId)).toEqual(['BookingRequested']);
      expect(await eventTypes(store, calendar)).toEqual(['DatesHeld', 'DatesReleased', 'DatesHeld']);
    });

    it('then a replay of the log expires nothing twice and releases nothing more', async () => {
      const { first } = await takenOver();
      await startProcess()();
      expect(await eventTypes(store, first.streamId)).toEqual(['BookingRequested', 'BookingExpired']);

      await expectReplayToAppendNothing();
    });

    // A request now expires the lapsed booking before it takes its dates; one recorded before
    // that did not, and its payment could still come in.
    it('leaves the first booking alone when, taken over by a request that did not expire it, its payment came in before the sweep, and it was cancelled for the lost dates', async () => {
      const first = await requestBooking(side, { listingId, ...stay }, as(consumer));
      clock.advance(16 * 60_000);
      const holdExpiresAt = new Date(clock.now().getTime() + 15 * 60_000).toISOString();
      const hold = { listingId, bookingId: 'second', ...stay, holdExpiresAt, now: clock.now().toISOString(), timeZone: 'UTC', displaceable: [first.id] };
      await side.handlers.listingCalendar.handle(calendar, { type: 'HoldDates', data: hold }, as(otherConsumer));
      // What the payment process does for a payment that finds its dates gone.
      await side.handlers.booking.handle(first.streamId, { type: 'MarkBookingPaid', data: { bookingId: first.id, paymentId: 'pay-1', amount: 4 * 12_000, currency: 'EUR' } }, as(owner));
      const now = clock.now().toISOString();
      await side.handlers.booking.handle(first.streamId, { type: 'CancelBooking', data: { bookingId: first.id, actor: admin, reason: 'dates lost', now } }, as(admin));

      await expectReplayToAppendNothing();
      expect(await eventTypes(store, first.streamId)).toEqual(['BookingRequested', 'BookingPaid', 'BookingCancelled']);
    });
  });

  it('given a booking paid just after its hold lapsed, before the sweep, leaves its dates held for the payment process to book', async () => {
    const booking = await requestBooking(side, { listingId, ...stay }, as(consumer));
    clock.advance(16 * 60_000);
    await side.handlers.booking.handle(booking.streamId, { type: 'MarkBookingPaid', data: { bookingId: booking.id, paymentId: 'pay-1', amount: 4 * 12_000, currency: 'EUR' } }, as(owner));
    await startProcess()();

    expect(await eventTypes(store, calendar)).toEqual(['DatesHeld']);
    // What the payment process does next.
    await side.handlers.listingCalendar.handle(calendar, { type: 'BookDates', data: { listingId, bookingId: booking.id } }, as(owner));
    expect(await eventTypes(store, calendar)).toEqual(['DatesHeld', 'DatesBooked']);
    await expectReplayToAppendNothing();
  });

  describe('given a booking request that died after holding its dates, retried with the same key just before the hold lapses', () => {
    it('when the sweep releases the dates between the retry finding its hold kept and recording the booking, the booking is expired at once and the retry answered hold-expired', async () => {
      const retried = as(consumer, 'died-midway');
      const booking = `booking-${deterministicUuid('booking', retried.commandId)}`;
      const turn = startProcess();
      store.interrupt((streamId) => streamId.startsWith('booking-'));
      await expect(requestBooking(side, { listingId, ...stay }, retried)).rejects.toThrow('died');
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
      clock.advance(15 * 60_000 - 1_000);
      let resume = () => {};
      const recording = store.pause((streamId) => streamId === booking, new Promise<void>((resolve) => (resume = resolve)));
      const retry = requestBooking(side, { listingId, ...stay }, retried).catch((error: unknown) => error);
      await recording;
      // The hold lapses; the sweep finds no booking yet, releases the dates and looks no further.
      clock.advance(2_000);
      expect(await turn()).toEqual({ progressed: 1, failed: 0 });
      expect(await eventTypes(store, calendar)).toEqual(['DatesHeld', 'DatesReleased']);

      resume();

      expect(await retry).toMatchObject({ code: 'hold-expired' });
      expect(await eventTypes(store, booking)).toEqual(['BookingRequested', 'BookingExpired']);
      clock.advance(graceMs);
      await turn();
      expect(await eventTypes(store, booking)).toEqual(['BookingRequested', 'BookingExpired']);
      expect(await eventTypes(store, calendar)).toEqual(['DatesHeld', 'DatesReleased']);
      await expectReplayToAppendNothing();
    });
  });

  it('run: a round whose every due step fails (the store refusing appends) is a failed attempt, so an operator sees it stall; the first round that settles one is a successful attempt', async () => {
    // Given a lapsed hold, and the booking's appends failing for the first three rounds
    const booking = await requestBooking(side, { listingId, ...stay }, as(consumer));
    clock.advance(16 * 60_000);
    const toBooking = (streamId: string) => streamId === booking.streamId;
    const failingRounds = 3;
    const attempts: boolean[] = [];
    const stop = new AbortController();
    store.interrupt(toBooking);
    const process = new HoldExpiryProcess({
      eventStore: store,
      side,
      orphanSlotGraceMs: graceMs,
      onAttempt: (succeeded) => {
        attempts.push(succeeded);
        // An interruption fails one append: armed again for each round still failing.
        if (attempts.length < failingRounds) store.interrupt(toBooking);
        if (attempts.length === failingRounds + 1) stop.abort();
      },
    });

    // When the loop runs rounds
    await process.run(stop.signal, 1);

    // Then each failing round reported a failed attempt, and the round the hold expired a successful one
    expect(attempts).toEqual([false, false, false, true]);
    expect(await eventTypes(store, booking.streamId)).toEqual(['BookingRequested', 'BookingExpired']);
    expect(await eventTypes(store, calendar)).toEqual(['DatesHeld', 'DatesReleased']);
  });

  describe('given an expiry that died after expiring the booking, before releasing its dates', () => {
    it('a restarted process releases the dates, and a replay after that changes nothing', async () => {
      const booking = await requestBooking(side, { listingId, ...stay }, as(consumer));
      clock.advance(16 * 60_000);
      store.interrupt((streamId) => streamId === calendar);
      await startProcess()();
      expect(await eventTypes(store, booking.streamId)).toEqual(['BookingRequested', 'BookingExpired']);
      expect(await eventTypes(store, calendar)).toEqual(['DatesHeld']);

      await startProcess()();

      expect(await eventTypes(store, calendar)).toEqual(['DatesHeld', 'DatesReleased']);
      await expectReplayToAppendNothing();
    });
  });

  describe('given a confirmed booking whose cancellation died before giving its dates back', () => {
    let bookingId: string;

    beforeEach(async () => {
      const booking = await requestBooking(side, { listingId, ...stay }, as(consumer));
      bookingId = booking.id;
      await side.handlers.booking.handle(booking.streamId, { type: 'MarkBookingPaid', data: { bookingId, paymentId: 'pay-1', amount: 4 * 12_000, currency: 'EUR' } }, as(owner));
      await side.handlers.listingCalendar.handle(calendar, { type: 'BookDates', data: { listingId, bookingId } }, as(owner));
      await side.handlers.booking.handle(booking.streamId, { type: 'ConfirmBooking', data: { bookingId } }, as(owner));
      store.interrupt((streamId) => streamId === calendar);
      await expect(cancelBooking(side, bookingId, { reason: 'plans changed' }, as(consumer))).rejects.toThrow('died');
      expect(await eventTypes(store, calendar)).toEqual(['DatesHeld', 'DatesBooked']);
    });

    it('the process gives the dates back after the grace period, so someone else can book them', async () => {
      const turn = startProcess();
      // Within the grace period the request may still be giving them back itself.
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
      expect(await eventTypes(store, calendar)).toEqual(['DatesHeld', 'DatesBooked']);

      clock.advance(graceMs);
      expect(await turn()).toEqual({ progressed: 1, failed: 0 });

      const released = (await streamEvents(store, calendar)).at(-1);
      expect(released).toMatchObject({ type: 'DatesReleased', data: { bookingId, reason: 'cancelled' } });
      await expect(requestBooking(side, { listingId, ...stay }, as(otherConsumer))).resolves.toBeDefined();
    });

    it('then a replay of the log gives nothing back twice, though the dates are held by someone else now', async () => {
      clock.advance(graceMs);
      await startProcess()();
      const other = await requestBooking(side, { listingId, ...stay }, as(otherConsumer));

      await expectReplayToAppendNothing();
      expect((await side.handlers.listingCalendar.read(calendar)).state.live).toMatchObject([{ bookingId: other.id, status: 'held' }]);
    });

    it('a retry of the cancellation after the process gave the dates back appends nothing more', async () => {
      clock.advance(graceMs);
      await startProcess()();
      const before = await everyEventId(store);

      await cancelBooking(side, bookingId, { reason: 'plans changed' }, as(consumer));

      expect(await everyEventId(store)).toEqual(before);
    });
  });

  it('given a booking still waiting for its payment whose cancellation died, the process gives the dates back as cancelled, before its hold would lapse', async () => {
    const booking = await requestBooking(side, { listingId, ...stay }, as(consumer));
    store.interrupt((streamId) => streamId === calendar);
    await expect(cancelBooking(side, booking.id, { reason: 'plans changed' }, as(consumer))).rejects.toThrow('died');
    clock.advance(graceMs);

    await startProcess()();

    expect((await streamEvents(store, calendar)).at(-1)).toMatchObject({ type: 'DatesReleased', data: { bookingId: booking.id, reason: 'cancelled' } });
    expect(await eventTypes(store, booking.streamId)).toEqual(['BookingRequested', 'BookingCancelled']);
    await expectReplayToAppendNothing();
  });

  it('given a cancellation that gave its dates back itself, the process has nothing to do', async () => {
    const booking = await requestBooking(side, { listingId, ...stay }, as(consumer));
    await cancelBooking(side, booking.id, { reason: 'plans changed' }, as(consumer));
    const turn = startProcess();
    clock.advance(graceMs);

    expect(await turn()).toEqual({ progressed: 0, failed: 0 });
    expect(await eventTypes(store, calendar)).toEqual(['DatesHeld', 'DatesReleased']);
  });

  describe('given an appointment whose cancellation died before freeing its slot and the patient time', () => {
    let appointmentId: string;

    beforeEach(async () => {
      appointmentId = (await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient))).id;
      store.interrupt((streamId) => streamId.startsWith('doctorSchedule-'));
      await expect(cancelAppointment(side, appointmentId, { reason: 'feeling better' }, as(patient))).rejects.toThrow('died');
    });

    it('the process frees both after the grace period, so another patient can take the slot and the patient another doctor', async () => {
      const turn = startProcess();
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });

      clock.advance(graceMs);
      expect(await turn()).toEqual({ progressed: 1, failed: 0 });

      expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked', 'SlotReleased']);
      expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeReleased']);
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'x' }, as(otherPatient))).resolves.toBeDefined();
      await expect(bookAppointment(side, { doctorId: otherDoctor.id, start: nine, reason: 'y' }, as(patient))).resolves.toBeDefined();
    });

    it('then a replay of the log frees nothing twice, though the slot is taken by someone else now', async () => {
      clock.advance(graceMs);
      await startProcess()();
      await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'x' }, as(otherPatient));

      await expectReplayToAppendNothing();
      expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked', 'SlotReleased', 'SlotBooked']);
    });
  });

  it('given an appointment cancellation that died after freeing the slot, the process frees the patient time', async () => {
    const { id } = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
    store.interrupt((streamId) => streamId.startsWith('patientAgenda-'));
    await expect(cancelAppointment(side, id, { reason: 'feeling better' }, as(patient))).rejects.toThrow('died');
    clock.advance(graceMs);

    await startProcess()();

    expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'SlotBooked', 'SlotReleased']);
    expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeReleased']);
    await expectReplayToAppendNothing();
  });

  it('given an appointment cancellation that freed everything itself, the process has nothing to do', async () => {
    const { id } = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
    await cancelAppointment(side, id, { reason: 'feeling better' }, as(patient));
    clock.advance(graceMs);

    expect(await startProcess()()).toEqual({ progressed: 0, failed: 0 });
  });

  describe('given an appointment held or missed whose request died before giving the patient time back', () => {
    let appointmentId: string;

    beforeEach(async () => {
      // An hour a slot: the grace period after a completion half an hour in ends before the appointment does.
      await setSchedule(side, doctor.id, { ...everyMorning, slotMinutes: 60 }, as(doctor));
      appointmentId = (await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient))).id;
      // Half an hour past its start: late enough to complete it or to mark it missed.
      clock.advance(Date.parse(nine) + 30 * 60_000 - clock.now().getTime());
      store.interrupt((streamId) => streamId.startsWith('patientAgenda-'));
    });

    it('a completion: the process gives the time back after the grace period, and the doctor keeps the slot', async () => {
      await expect(completeAppointment(side, appointmentId, { notes: 'rest' }, as(doctor))).rejects.toThrow('died');
      const { process, turn } = startWatchedProcess();
      // Within the grace period the request may still be on its way, or retried.
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
      expect(process.pending.cancellations).toBe(1);

      clock.advance(graceMs);
      expect(await turn()).toEqual({ progressed: 1, failed: 0 });

      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: undefined });
      expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'ScheduleSet', 'SlotBooked']);
      expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeReleased']);
      // Its own release, once read, settles it.
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
      expect(process.pending.cancellations).toBe(0);
      await expectReplayToAppendNothing();
    });

    it('a no-show: a process restarted after the grace period gives the time back, and the doctor keeps the slot', async () => {
      await expect(markNoShow(side, appointmentId, as(doctor))).rejects.toThrow('died');
      clock.advance(graceMs);

      await startProcess()();

      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: undefined });
      expect(await eventTypes(store, `doctorSchedule-${doctor.id}`)).toEqual(['ScheduleSet', 'ScheduleSet', 'SlotBooked']);
      expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeReleased']);
      await expectReplayToAppendNothing();
    });

    it('a completion swept only after the appointment ended: its past time is left reserved, as it collides with no booking, and nothing is appended or left pending', async () => {
      await expect(completeAppointment(side, appointmentId, { notes: 'rest' }, as(doctor))).rejects.toThrow('died');
      clock.advance(Date.parse(ten) - clock.now().getTime());
      const before = await everyEventId(store);
      const { process, turn } = startWatchedProcess();

      await turn();

      expect(await everyEventId(store)).toEqual(before);
      expect(process.pending).toEqual(nothingPending);
      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: nine });
    });
  });

  it('given a completion and a no-show that gave the patient time back themselves, a process following the log from the start leaves nothing pending and does nothing', async () => {
    const held = (await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient))).id;
    const missed = (await bookAppointment(side, { doctorId: doctor.id, start: ten, reason: 'follow-up' }, as(patient))).id;
    clock.advance(Date.parse(ten) + 30 * 60_000 - clock.now().getTime());
    await completeAppointment(side, held, { notes: 'rest' }, as(doctor));
    await markNoShow(side, missed, as(doctor));
    await expectNothingToDoAfterGrace();
    expect(await whereIs(held)).toEqual({ appointment: nine, slot: nine, time: undefined });
    expect(await whereIs(missed)).toEqual({ appointment: ten, slot: ten, time: undefined });
  });

  describe('given a reschedule that died after moving the time and holding the new slot, before the appointment followed', () => {
    const request = as(patient, 'move-to-nine-thirty');
    let appointmentId: string;

    beforeEach(async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      appointmentId = booked.id;
      store.interrupt((streamId) => streamId === booked.streamId);
      await expect(rescheduleAppointment(side, appointmentId, { start: nineThirty }, request)).rejects.toThrow('died');
      // The old slot stays the appointment's, the new one is held for it: neither is free for
      // anyone else, and any other reschedule of the appointment is refused.
      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: nineThirty });
      expect(slotHoldOf((await side.handlers.doctorSchedule.read(`doctorSchedule-${doctor.id}`)).state, appointmentId)).toMatchObject({ start: nineThirty });
    });

    it('the process drops the hold and moves the time back after the grace period, so the new start is free again and the old one never was', async () => {
      const { process, turn } = startWatchedProcess();
      // Within the grace period the request may still be on its way, or retried.
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
      expect(process.pending.moves).toBe(2);
      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: nineThirty });
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'y' }, as(otherPatient))).rejects.toMatchObject({ code: 'slot-taken' });
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nineThirty, reason: 'y' }, as(otherPatient))).rejects.toMatchObject({ code: 'slot-taken' });

      clock.advance(graceMs);
      expect(await turn()).toEqual({ progressed: 2, failed: 0 });

      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: nine });
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nineThirty, reason: 'x' }, as(otherPatient))).resolves.toBeDefined();
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'y' }, as(otherPatient))).rejects.toMatchObject({ code: 'slot-taken' });
      // Its own moves back, once read, settle what it was watching.
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
      expect(process.pending.moves).toBe(0);
    });

    it('when the appointment has begun by then, the process still drops the hold the failed reschedule took', async () => {
      const { process, turn, errors } = startWatchedProcess();
      await turn();
      clock.advance(Date.parse(nine) - clock.now().getTime() + 5 * 60_000);
      await turn();
      // Slot and time go back as ever; their own events, once read, settle them.
      await turn();

      expect(errors).toEqual([]);
      expect(process.pending.moves).toBe(0);
      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: nine });
      // 09:30 was held by an appointment that is not there: free again for anyone.
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nineThirty, reason: 'x' }, as(otherPatient))).resolves.toBeDefined();
    });

    it('then a replay of the log moves nothing and leaves nothing pending', async () => {
      clock.advance(graceMs);
      await startProcess()();
      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: nine });
      const before = await everyEventId(store);

      const { process, turn } = startWatchedProcess();
      clock.advance(graceMs);
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });

      expect(process.pending.moves).toBe(0);
      expect(await everyEventId(store)).toEqual(before);
    });

    it('a retry of the same request within the grace period completes the reschedule, and the process then does nothing', async () => {
      const { process, turn } = startWatchedProcess();
      await turn();
      expect(process.pending.moves).toBe(2);

      await rescheduleAppointment(side, appointmentId, { start: nineThirty }, request);
      expect(await whereIs(appointmentId)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
      const before = await everyEventId(store);
      clock.advance(graceMs);

      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
      expect(process.pending.moves).toBe(0);
      expect(await everyEventId(store)).toEqual(before);
    });

    it('a retry that found its steps taken, and lands after the process moved them back, takes them again at once: the new time is never left free', async () => {
      const { process, turn } = startWatchedProcess();
      await turn();
      let resume = () => {};
      const reached = store.pause((streamId) => streamId === `appointment-${appointmentId}`, new Promise<void>((resolve) => (resume = resolve)));
      // From another process: the process's own commands on the appointment would otherwise wait in line behind the paused append.
      const retry = rescheduleAppointment(otherProcess, appointmentId, { start: nineThirty }, request);
      await reached;
      clock.advance(graceMs);
      expect(await turn()).toEqual({ progressed: 2, failed: 0 });
      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: nine });

      resume();
      await retry;

      expect(await whereIs(appointmentId)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nineThirty, reason: 'x' }, as(otherPatient))).rejects.toMatchObject({ code: 'slot-taken' });
      await turn();
      clock.advance(graceMs);
      await turn();
      expect(process.pending.moves).toBe(0);
      expect(await whereIs(appointmentId)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
    });

    it('a retry that lands while the process moves the slot back (after the retry looked) has the process put slot and time where the appointment now is', async () => {
      const { process, turn } = startWatchedProcess();
      await turn();
      clock.advance(graceMs);
      let resume = () => {};
      const reached = store.pause((streamId) => streamId === `doctorSchedule-${doctor.id}`, new Promise<void>((resolve) => (resume = resolve)));
      const sweeping = turn();
      await reached;
      // The process read the appointment at nine and is about to move the slot back there; the
      // retry, all steps found in place, lands in between and sees nothing to follow.
      await rescheduleAppointment(otherProcess, appointmentId, { start: nineThirty }, request);
      expect(await whereIs(appointmentId)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
      resume();
      await sweeping;

      expect(await whereIs(appointmentId)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
      await turn();
      clock.advance(graceMs);
      await turn();
      expect(process.pending.moves).toBe(0);
      expect(await whereIs(appointmentId)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
    });

    it('nobody can take the old slot before the sweep, so the process has no double booking to report, and does nothing again', async () => {
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'x' }, as(otherPatient))).rejects.toMatchObject({ code: 'slot-taken' });
      const { process, turn, errors } = startWatchedProcess();
      clock.advance(graceMs);

      await turn();
      await turn();

      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: nine });
      expect(errors).toEqual([]);
      const before = await everyEventId(store);
      clock.advance(graceMs);
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
      expect(process.pending.moves).toBe(0);
      expect(await everyEventId(store)).toEqual(before);
    });
  });

  describe('given a reschedule that died after the appointment moved, before the slot\'s move completed', () => {
    let appointmentId: string;

    beforeEach(async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      appointmentId = booked.id;
      let appends = 0;
      store.interrupt((streamId) => streamId === `doctorSchedule-${doctor.id}` && ++appends === 2);
      await expect(rescheduleAppointment(side, appointmentId, { start: nineThirty }, as(patient))).rejects.toThrow('died');
      // Both are kept from others meanwhile: the old slot the appointment left, and the new one held for it.
      expect(await whereIs(appointmentId)).toEqual({ appointment: nineThirty, slot: nine, time: nineThirty });
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'y' }, as(otherPatient))).rejects.toMatchObject({ code: 'slot-taken' });
    });

    it('the process completes the move after the grace period: the hold is the appointment\'s slot, and the old one is free', async () => {
      const { process, turn, errors } = startWatchedProcess();
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
      expect(process.pending.moves).toBeGreaterThan(0);

      clock.advance(graceMs);
      await turn();
      await turn();

      expect(errors).toEqual([]);
      expect(process.pending.moves).toBe(0);
      expect(await whereIs(appointmentId)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
      expect(slotHoldOf((await side.handlers.doctorSchedule.read(`doctorSchedule-${doctor.id}`)).state, appointmentId)).toBeUndefined();
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'y' }, as(otherPatient))).resolves.toBeDefined();
      await expectReplayToAppendNothing();
    });

    it('a slot following the appointment whose hold is dropped between its look and its CompleteSlotMove is restored there instead: the appointment keeps a slot where it is, and nine is free', async () => {
      const schedule = `doctorSchedule-${doctor.id}`;
      let resume = () => {};
      const completing = store.pause((streamId) => streamId === schedule, new Promise<void>((resolve) => (resume = resolve)));
      const following = slotFollows(side, { appointmentId, doctorId: doctor.id, patientId: patient.id, start: nineThirty, end: ten }, as(patient), clock.now().toISOString());
      await completing;
      await otherProcess.handlers.doctorSchedule.handle(schedule, { type: 'DropSlotHold', data: { appointmentId, to: nineThirty } }, as(admin));
      resume();
      await following;

      expect(await whereIs(appointmentId)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'y' }, as(otherPatient))).resolves.toBeDefined();
    });

    it('a slot following the appointment onto time someone booked once its hold was dropped is refused, and the double booking is reported, not swallowed', async () => {
      const schedule = `doctorSchedule-${doctor.id}`;
      await side.handlers.doctorSchedule.handle(schedule, { type: 'DropSlotHold', data: { appointmentId, to: nineThirty } }, as(admin));
      await bookAppointment(side, { doctorId: doctor.id, start: nineThirty, reason: 'x' }, as(otherPatient));
      const reported: string[] = [];
      const reporting: CommandSide = { ...side, onError: (_error, what) => reported.push(what) };

      const followed = await slotFollows(reporting, { appointmentId, doctorId: doctor.id, patientId: patient.id, start: nineThirty, end: ten }, as(patient), clock.now().toISOString());

      expect(followed).toBeUndefined();
      expect(reported).toEqual([expect.stringContaining('slot-taken; a double booking')]);
      expect(await whereIs(appointmentId)).toEqual({ appointment: nineThirty, slot: nine, time: nineThirty });
    });

    it('when the appointment is cancelled before the sweep, its slot and the hold both go back with it', async () => {
      await cancelAppointment(side, appointmentId, { reason: 'better' }, as(patient));
      const { process, turn, errors } = startWatchedProcess();
      clock.advance(graceMs);
      await turn();
      await turn();

      expect(errors).toEqual([]);
      expect(process.pending.moves).toBe(0);
      expect(await whereIs(appointmentId)).toEqual({ appointment: nineThirty, slot: undefined, time: undefined });
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'y' }, as(otherPatient))).resolves.toBeDefined();
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nineThirty, reason: 'z' }, as({ id: 'patient-3', roles: ['PATIENT'] }))).resolves.toBeDefined();
    });
  });

  describe('given a reschedule slow but alive past the grace period, its appointment append on its way', () => {
    /** Holds the next append to `streamId` (one of these at a time) back until `resume` is called. */
    function holdNextAppend(on: (streamId: string) => boolean): { reached: Promise<void>; resume: () => void } {
      let resume = () => {};
      const reached = store.pause(on, new Promise<void>((resolve) => (resume = resolve)));
      return { reached, resume };
    }

    it('when the process gives the reschedule up and another patient books the new time before the append lands, then the doctor never holds two appointments at one time, and the rescheduled appointment, its slot and its time agree', async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      const slow = holdNextAppend((streamId) => streamId === booked.streamId);
      // The time moved and 09:30 held, the request pauses before its appointment append.
      const rescheduling = rescheduleAppointment(otherProcess, booked.id, { start: nineThirty }, as(patient)).then(
        () => 'rescheduled' as const,
        (error: unknown) => error,
      );
      await slow.reached;
      const { turn } = startWatchedProcess();
      clock.advance(graceMs);
      await turn();
      // The hold is gone: another patient may book 09:30 now.
      const other = await bookAppointment(otherProcess, { doctorId: doctor.id, start: nineThirty, reason: 'x' }, as(otherPatient)).then(
        (made) => made.id,
        (error: unknown) => error,
      );
      slow.resume();
      const outcome = await rescheduling;
      await turn();

      const a = await whereIs(booked.id);
      expect(a.slot).toBe(a.appointment);
      expect(a.time).toBe(a.appointment);
      const otherAt = typeof other === 'string' ? (await whereIsAppointment(side, other, { doctorId: doctor.id, patientId: otherPatient.id })).appointment : undefined;
      expect(otherAt).not.toBe(a.appointment);
      if (outcome === 'rescheduled') {
        // Only by retrying after the process gave it up: then the other booking must have lost.
        expect(a.appointment).toBe(nineThirty);
        expect(other).toMatchObject({ code: 'slot-taken' });
      } else {
        expect(outcome).toMatchObject({ code: 'slot-taken' });
        expect(a.appointment).toBe(nine);
      }
      // The appointment's history says what the process did.
      expect(await eventTypes(store, booked.streamId)).toContain('RescheduleGivenUp');
    });

    it("when the request's append lands after the process read the appointment at nine and before it gives up, and the process's drop would land between the request finding the hold and completing it, then the move completes: slot, time and appointment at 09:30, nine free", async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      const schedule = `doctorSchedule-${doctor.id}`;
      const request = holdNextAppend((streamId) => streamId === booked.streamId);
      const rescheduling = rescheduleAppointment(otherProcess, booked.id, { start: nineThirty }, as(patient));
      await request.reached;
      // The process has read the appointment at nine and is about to act on it (or on the hold).
      const { turn, errors } = startWatchedProcess();
      clock.advance(graceMs);
      const processActs = holdNextAppend((streamId) => streamId === booked.streamId || streamId === schedule);
      const sweeping = turn();
      await processActs.reached;
      // The request's append lands; its CompleteSlotMove, decided on the hold it found, waits.
      const completing = holdNextAppend((streamId) => streamId === schedule);
      request.resume();
      await completing.reached;
      processActs.resume();
      await sweeping;
      completing.resume();
      await rescheduling;

      // As the request answers, not a sweep later: 09:30 was never free for anyone else.
      expect(await whereIs(booked.id)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nineThirty, reason: 'x' }, as(otherPatient))).rejects.toMatchObject({ code: 'slot-taken' });
      await turn();
      expect(errors).toEqual([]);
      expect(await whereIs(booked.id)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'x' }, as(otherPatient))).resolves.toBeDefined();
    });

    it("when the process's drop of the first hold lands after the request, given up, tried again and held 09:30 anew, it leaves the new hold alone: another patient is refused 09:30, and the request's move completes there", async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      const schedule = `doctorSchedule-${doctor.id}`;
      const firstTry = holdNextAppend((streamId) => streamId === booked.streamId);
      const rescheduling = rescheduleAppointment(otherProcess, booked.id, { start: nineThirty }, as(patient));
      await firstTry.reached;
      // The process gives the request up, then its drop of the 09:30 hold waits.
      const { turn } = startWatchedProcess();
      clock.advance(graceMs);
      const processDrops = holdNextAppend((streamId) => streamId === schedule);
      const sweeping = turn();
      await processDrops.reached;
      // The first try's append is refused; it drops its own hold, and the second try holds 09:30 again.
      const secondTry = holdNextAppend((streamId) => streamId === booked.streamId);
      firstTry.resume();
      await secondTry.reached;
      processDrops.resume();
      await sweeping;
      const other = bookAppointment(otherProcess, { doctorId: doctor.id, start: nineThirty, reason: 'x' }, as(otherPatient));
      await expect(other).rejects.toMatchObject({ code: 'slot-taken' });
      secondTry.resume();
      await expect(rescheduling).resolves.toBeDefined();

      const scheduleLog = (await streamEvents(store, schedule)).map((event) => event.type);
      expect(scheduleLog.filter((type) => type === 'SlotMoveHeld' || type === 'SlotMoveDropped')).toEqual(['SlotMoveHeld', 'SlotMoveDropped', 'SlotMoveHeld']);
      expect(await whereIs(booked.id)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
    });
  });

  describe('given a reschedule to tomorrow that died after moving the time and holding the slot, and the appointment then held or missed before the process swept', () => {
    const tomorrowNine = '2030-02-05T09:00:00.000Z';
    let appointmentId: string;

    beforeEach(async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      appointmentId = booked.id;
      store.interrupt((streamId) => streamId === booked.streamId);
      await expect(rescheduleAppointment(side, appointmentId, { start: tomorrowNine }, as(patient))).rejects.toThrow('died');
      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: tomorrowNine });
    });

    /** Half an hour past the appointment's start, when the doctor may record how it went. */
    const halfAnHourIn = () => clock.advance(Date.parse(nine) + 30 * 60_000 - clock.now().getTime());

    it('a no-show: the process drops the hold after the grace period, so tomorrow 09:00 is free for another patient', async () => {
      halfAnHourIn();
      await markNoShow(side, appointmentId, as(doctor));
      // The no-show gave the patient's time back where the reschedule had moved it.
      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: undefined });
      const { process, turn, errors } = startWatchedProcess();
      clock.advance(graceMs);

      await turn();
      // Its own drop, once read, settles it.
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });

      expect(errors).toEqual([]);
      expect(process.pending).toEqual(nothingPending);
      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: undefined });
      await expect(bookAppointment(side, { doctorId: doctor.id, start: tomorrowNine, reason: 'x' }, as(otherPatient))).resolves.toBeDefined();
      await expectReplayToAppendNothing();
    });

    it('a no-show of an appointment whose old slot someone tried to book meanwhile: they were refused, and the process drops the hold with nothing to report', async () => {
      await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'x' }, as(otherPatient))).rejects.toMatchObject({ code: 'slot-taken' });
      halfAnHourIn();
      await markNoShow(side, appointmentId, as(doctor));
      const { turn, errors } = startWatchedProcess();
      clock.advance(graceMs);

      await turn();

      expect(errors).toEqual([]);
      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: undefined });
      await expect(bookAppointment(side, { doctorId: doctor.id, start: tomorrowNine, reason: 'z' }, as({ id: 'patient-3', roles: ['PATIENT'] }))).resolves.toBeDefined();
    });

    it('a completion whose own request died too, swept after the appointment ended: the process drops the hold and gives the patient tomorrow 09:00 back', async () => {
      halfAnHourIn();
      store.interrupt((streamId) => streamId.startsWith('patientAgenda-'));
      await expect(completeAppointment(side, appointmentId, { notes: 'rest' }, as(doctor))).rejects.toThrow('died');
      const { process, turn, errors } = startWatchedProcess();
      clock.advance(Date.parse(ten) - clock.now().getTime());

      await turn();
      await turn();

      expect(errors).toEqual([]);
      expect(process.pending).toEqual(nothingPending);
      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: undefined });
      await expect(bookAppointment(side, { doctorId: otherDoctor.id, start: tomorrowNine, reason: 'y' }, as(patient))).resolves.toBeDefined();
      await expect(bookAppointment(side, { doctorId: doctor.id, start: tomorrowNine, reason: 'x' }, as(otherPatient))).resolves.toBeDefined();
      await expectReplayToAppendNothing();
    });
  });

  it('given a reschedule that died after moving the time and holding the slot, then a schedule change acknowledging the appointment that died before cancelling it, the process first puts the time back exactly where the appointment is, off the new grid, then cancels it', async () => {
    const { id, streamId } = await bookAppointment(side, { doctorId: doctor.id, start: nineThirty, reason: 'check-up' }, as(patient));
    store.interrupt((each) => each === streamId);
    await expect(rescheduleAppointment(side, id, { start: ten }, as(patient))).rejects.toThrow('died');
    const { process, turn, errors } = startWatchedProcess();
    await turn();
    clock.advance(graceMs / 2);
    // An hour a slot from now on: no slot starts at 09:30 any more. The doctor acknowledges the
    // appointment, and that request dies too, before cancelling it.
    store.interrupt((each) => each === streamId);
    await expect(setSchedule(side, doctor.id, { ...everyMorning, slotMinutes: 60, acknowledgedAffected: [id] }, as(doctor))).rejects.toThrow('died');
    expect(await whereIs(id)).toEqual({ appointment: nineThirty, slot: nineThirty, time: ten });
    clock.advance(graceMs / 2);

    await turn();

    expect(errors).toEqual([]);
    expect(await whereIs(id)).toEqual({ appointment: nineThirty, slot: nineThirty, time: nineThirty });
    expect(slotOf((await side.handlers.doctorSchedule.read(`doctorSchedule-${doctor.id}`)).state, id)).toEqual({ appointmentId: id, start: nineThirty, end: ten });
    expect(reservationOf((await side.handlers.patientAgenda.read(`patientAgenda-${patient.id}`)).state, id)).toEqual({ start: nineThirty, end: ten });
    // 09:00–10:00 overlaps the appointment; 10:00 is free again.
    await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'x' }, as(otherPatient))).rejects.toMatchObject({ code: 'slot-taken' });
    await expect(bookAppointment(side, { doctorId: doctor.id, start: ten, reason: 'y' }, as(otherPatient))).resolves.toBeDefined();
    await turn();
    expect(process.pending.moves).toBe(0);

    clock.advance(graceMs / 2);
    await turn();

    expect(errors).toEqual([]);
    expect((await side.handlers.appointment.read(streamId)).state).toMatchObject({ status: 'cancelled', cancelledBy: 'doctor' });
    expect(await whereIs(id)).toEqual({ appointment: nineThirty, slot: undefined, time: undefined });
    await turn();
    expect(process.pending).toEqual(nothingPending);
    await expectReplayToAppendNothing();
  });

  it('given a booking that died before the appointment, and a sweep that died between freeing the two, frees the rest on its next turn', async () => {
    store.interrupt((streamId) => streamId.startsWith('appointment-'));
    await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient))).rejects.toThrow('died');
    const { turn, errors } = startWatchedProcess();
    expect(await turn()).toEqual({ progressed: 0, failed: 0 });

    clock.advance(graceMs);
    // The sweep frees one of the two and dies before the other, whichever it frees first.
    let releases = 0;
    store.interrupt((streamId) => (streamId.startsWith('patientAgenda-') || streamId.startsWith('doctorSchedule-')) && ++releases === 2);
    await turn();
    expect(errors).toHaveLength(1);
    await turn();

    expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeReleased']);
    await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient))).resolves.toBeDefined();
    await expectReplayToAppendNothing();
  });

  it('given patient time reserved for an appointment whose id the process had already given up, gives the time back after the grace period', async () => {
    const lost = 'lost-appointment';
    const now = clock.now().toISOString();
    await side.handlers.appointment.handle(`appointment-${lost}`, { type: 'AbandonAppointment', data: { appointmentId: lost, now } }, as(admin));
    // A retry of the booking request that reserved the time, was refused the appointment, and died before giving the time back.
    await side.handlers.patientAgenda.handle(
      `patientAgenda-${patient.id}`,
      { type: 'ReserveTime', data: { patientId: patient.id, appointmentId: lost, start: nine, end: nineThirty } },
      as(patient),
    );
    const { process, turn } = startWatchedProcess();
    expect(await turn()).toEqual({ progressed: 0, failed: 0 });
    expect(process.pending.times).toBe(1);

    clock.advance(graceMs);
    expect(await turn()).toEqual({ progressed: 1, failed: 0 });

    expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeReleased']);
    await expect(bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient))).resolves.toBeDefined();
    await turn();
    expect(process.pending.times).toBe(0);
    await expectReplayToAppendNothing();
  });

  describe('given reschedules that finished', () => {
    it('a reschedule that went through leaves nothing pending, and the process does nothing', async () => {
      const { id } = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      await rescheduleAppointment(side, id, { start: nineThirty }, as(patient));
      await expectNothingToDoAfterGrace();
    });

    it("a reschedule refused because another patient took the new slot while the patient's time moved, the time moved back by the request, leaves nothing pending, and the process does nothing", async () => {
      const { id } = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      let resume = () => {};
      const paused = store.pause((streamId) => streamId === `doctorSchedule-${doctor.id}`, new Promise<void>((resolve) => (resume = resolve)));
      const refused = rescheduleAppointment(side, id, { start: nineThirty }, as(patient));
      await paused;
      await bookAppointment(otherProcess, { doctorId: doctor.id, start: nineThirty, reason: 'x' }, as(otherPatient));
      resume();
      await expect(refused).rejects.toMatchObject({ code: 'slot-taken' });
      expect(await eventTypes(store, `patientAgenda-${patient.id}`)).toEqual(['TimeReserved', 'TimeMoved', 'TimeMoved']);
      await expectNothingToDoAfterGrace();
      expect(await whereIs(id)).toEqual({ appointment: nine, slot: nine, time: nine });
    });
  });

  describe('given a reschedule that died after moving the time, before the slot', () => {
    let appointmentId: string;

    beforeEach(async () => {
      const booked = await bookAppointment(side, { doctorId: doctor.id, start: nine, reason: 'check-up' }, as(patient));
      appointmentId = booked.id;
      store.interrupt((streamId) => streamId === `doctorSchedule-${doctor.id}`);
      await expect(rescheduleAppointment(side, appointmentId, { start: nineThirty }, as(patient))).rejects.toThrow('died');
      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: nineThirty });
    });

    it('the process moves the time back to the appointment after the grace period, so the patient is free at the new start again', async () => {
      const { process, turn, errors } = startWatchedProcess();
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
      expect(process.pending.moves).toBe(1);
      clock.advance(graceMs);

      expect(await turn()).toEqual({ progressed: 1, failed: 0 });
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });

      expect(errors).toEqual([]);
      expect(process.pending.moves).toBe(0);
      expect(await whereIs(appointmentId)).toEqual({ appointment: nine, slot: nine, time: nine });
      await expect(bookAppointment(side, { doctorId: otherDoctor.id, start: nineThirty, reason: 'second opinion' }, as(patient))).resolves.toBeDefined();
      await expectReplayToAppendNothing();
    });
  });

  describe('given a deactivation that died after closing the calendar, before marking the listing', () => {
    beforeEach(async () => {
      // The request's first step; it died before the listing's.
      await side.handlers.listingCalendar.handle(calendar, { type: 'CloseCalendar', data: { listingId } }, as(owner));
      // Listed as active, yet every booking is refused.
      await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).rejects.toMatchObject({ code: 'listing-inactive' });
    });

    it('the process reopens the calendar after the grace period, so the listing, still active, takes bookings again', async () => {
      const { process, turn } = startWatchedProcess();
      // Within the grace period the deactivation may still be on its way, or retried.
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
      expect(process.pending.calendars).toBe(1);
      expect(await eventTypes(store, calendar)).toEqual(['CalendarClosed']);

      clock.advance(graceMs);
      expect(await turn()).toEqual({ progressed: 1, failed: 0 });

      expect(await eventTypes(store, calendar)).toEqual(['CalendarClosed', 'CalendarReopened']);
      expect(await eventTypes(store, `listing-${listingId}`)).toEqual(['ListingCreated']);
      await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).resolves.toBeDefined();
      // Its own reopen, once read, settles what it was watching.
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
      expect(process.pending.calendars).toBe(0);
    });

    it('a process restarted after the grace period, following the log from the start, reopens it, and a replay after that appends nothing', async () => {
      clock.advance(graceMs);

      await startProcess()();

      expect(await eventTypes(store, calendar)).toEqual(['CalendarClosed', 'CalendarReopened']);
      await expectReplayToAppendNothing();
    });

    it('a deactivation that lands within the grace period is what the close was for: nothing is left pending, and the calendar stays closed', async () => {
      const { process, turn } = startWatchedProcess();
      await turn();
      await setListingActive(side, listingId, false, as(owner));
      const before = await everyEventId(store);
      clock.advance(graceMs);

      expect(await turn()).toEqual({ progressed: 0, failed: 0 });

      expect(process.pending.calendars).toBe(0);
      expect(await everyEventId(store)).toEqual(before);
      expect((await side.handlers.listingCalendar.read(calendar)).state.closed).toBe(true);
    });

    it('a deactivation that lands while the process reopens the calendar leaves it closed: the later of the two sees the other', async () => {
      const { process, turn } = startWatchedProcess();
      await turn();
      clock.advance(graceMs);
      let resume = () => {};
      const reached = store.pause((streamId) => streamId === calendar, new Promise<void>((resolve) => (resume = resolve)));
      const sweeping = turn();
      await reached;
      await setListingActive(otherProcess, listingId, false, as(owner));
      resume();
      await sweeping;

      // The reopen was decided on the calendar and the listing as they were; the deactivation's
      // close, recorded on the closed calendar, refused it, and the process looked again.
      expect(await eventTypes(store, calendar)).toEqual(['CalendarClosed', 'CalendarClosed']);
      await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).rejects.toMatchObject({ code: 'listing-inactive' });
      await turn();
      expect(process.pending.calendars).toBe(0);
      await expectReplayToAppendNothing();
    });
  });

  describe('given a reactivation that died after marking the listing, before reopening the calendar', () => {
    beforeEach(async () => {
      await setListingActive(side, listingId, false, as(owner));
      store.interrupt((streamId) => streamId === calendar);
      await expect(setListingActive(side, listingId, true, as(owner))).rejects.toThrow('died');
      expect(await eventTypes(store, `listing-${listingId}`)).toEqual(['ListingCreated', 'ListingDeactivated', 'ListingReactivated']);
      await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).rejects.toMatchObject({ code: 'listing-inactive' });
    });

    it('the process reopens the calendar after the grace period, so the listing takes bookings again', async () => {
      const { process, turn } = startWatchedProcess();
      expect(await turn()).toEqual({ progressed: 0, failed: 0 });
      expect(process.pending.calendars).toBe(1);

      clock.advance(graceMs);
      expect(await turn()).toEqual({ progressed: 1, failed: 0 });

      expect(await eventTypes(store, calendar)).toEqual(['CalendarClosed', 'CalendarClosed', 'CalendarReopened']);
      await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).resolves.toBeDefined();
      await turn();
      expect(process.pending.calendars).toBe(0);
    });

    it('a process restarted after the grace period, following the log from the start, reopens it, and a replay after that appends nothing', async () => {
      clock.advance(graceMs);

      await startProcess()();

      expect(await eventTypes(store, calendar)).toEqual(['CalendarClosed', 'CalendarClosed', 'CalendarReopened']);
      await expectReplayToAppendNothing();
    });
  });

  it('given a deactivated listing whose calendar was left open, a process restarted after the grace period closes it, so it takes no bookings', async () => {
    // The listing's step without the calendar's, as a reopen that raced the deactivation leaves it.
    await side.handlers.listing.handle(`listing-${listingId}`, { type: 'DeactivateListing', data: { listingId, actor: owner } }, as(owner));
    const { process, turn } = startWatchedProcess();
    expect(await turn()).toEqual({ progressed: 0, failed: 0 });
    expect(process.pending.calendars).toBe(1);

    clock.advance(graceMs);
    await startProcess()();

    expect(await eventTypes(store, calendar)).toEqual(['CalendarClosed']);
    await expect(requestBooking(side, { listingId, ...stay }, as(consumer))).rejects.toMatchObject({ code: 'listing-inactive' });
    await expectReplayToAppendNothing();
  });

  describe('given deactivations and reactivations that finished', () => {
    it('a deactivation and a reactivation that went through leave nothing pending, and the process does nothing', async () => {
      await setListingActive(side, listingId, false, as(owner));
      await setListingActive(side, listingId, true, as(owner));
      const before = await everyEventId(store);
      const { process, turn } = startWatchedProcess();
      clock.advance(graceMs);

      expect(await turn()).toEqual({ progressed: 0, failed: 0 });

      expect(process.pending.calendars).toBe(0);
      expect(await everyEventId(store)).toEqual(before);
      expect(await eventTypes(store, calendar)).toEqual(['CalendarClosed', 'CalendarClosed', 'CalendarReopened']);
    });

    it('a deactivation refused after closing the calendar, which reopened it itself, leaves nothing pending, and the process does nothing', async () => {
      let resume = () => {};
      const paused = store.pause((streamId) => streamId === `listing-${listingId}`, new Promise<void>((resolve) => (resume = resolve)));
      const refused = setListingActive(side, listingId, false, { ...as(owner), expectedVersion: 0 });
      await paused;
      await updateListing(otherProcess, listingId, { title: 'Loft by the Saône' }, as(owner));
      resume();
      await expect(refused).rejects.toMatchObject({ name: 'VersionMismatchError' });
      expect(await eventTypes(store, calendar)).toEqual(['CalendarClosed', 'CalendarReopened']);
      const before = await everyEventId(store);
      const { process, turn } = startWatchedProcess();
      clock.advance(graceMs);

      expect(await turn()).toEqual({ progressed: 0, failed: 0 });

      expect(process.pending.calendars).toBe(0);
      expect(await everyEventId(store)).toEqual(before);
    });
  });
});
