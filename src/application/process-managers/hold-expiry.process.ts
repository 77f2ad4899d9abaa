import type { GiveUpReschedule } from '../../domain/appointment/appointment.commands.js';
import { appointmentStreamId, isMade, type AppointmentState } from '../../domain/appointment/appointment.decider.js';
import { bookingStreamId } from '../../domain/booking/booking.decider.js';
import type { RestoreSlot } from '../../domain/doctor-schedule/doctor-schedule.commands.js';
import { doctorScheduleStreamId, slotHoldOf, slotOf } from '../../domain/doctor-schedule/doctor-schedule.decider.js';
import { listingCalendarStreamId } from '../../domain/listing-calendar/listing-calendar.decider.js';
import { patientAgendaStreamId, reservationOf } from '../../domain/patient-agenda/patient-agenda.decider.js';
import { actorSchema, type Actor } from '../../domain/shared/actor.js';
import { DomainError } from '../../domain/shared/domain-error.js';
import { aggregates } from '../aggregates/aggregates.js';
import { patientTimeBack, releaseAppointmentTime, slotFollows, timeFollows } from '../appointments/appointment.use-cases.js';
import { expireUnpaidBooking, releaseDates } from '../bookings/booking.use-cases.js';
import { calendarFollowsListing } from '../listings/listing.use-cases.js';
import { cancelAffectedAppointments } from '../schedules/schedule.use-cases.js';
import type { CommandSide } from '../command-handlers.js';
import { VersionMismatchError } from '../command-handling/errors.js';
import type { CommandOptions } from '../command-handling/handle-command.js';
import { occurredAt } from '../metadata.js';
import type { EventStore, RecordedEvent } from '../ports/event-store.js';
import { causeOf, commandCausedBy, holdExpiryName, runSweepLoop, type Cause, type SweepSummary } from './sweeping-process.js';

/**
 * A hold that lapses unpaid ends in two appends: the booking expired and its dates released as
 * `expired`. This process's sweep expires first; another consumer's hold on the same dates
 * releases first, in its own decision. The hold stays pending until both are seen, so whichever
 * is missing is done, whoever did the other and whenever the process last stopped.
 */
type PendingHold = { listingId: string; holdExpiresAt: number; cause: Cause; status: 'held' | 'booking-expired' | 'dates-released' };
type PendingSlot = { doctorId: string; patientId: string; bookedAt: number; cause: Cause };
/**
 * Patient time reserved for an appointment not made yet, whose slot is not pending (a pending
 * slot's sweep gives the time back with it): time a retry of the booking reserved after this
 * process had given the id up, when the retry died before giving the time back itself.
 */
type PendingTime = { patientId: string; reservedAt: number; cause: Cause };
/** A cancellation whose request may have died before giving back what it held. */
type PendingRelease = { cancelledAt: number; cause: Cause };
/**
 * An appointment cancelled, completed or missed whose request may have died before giving back
 * what it held, and what of that is still held. A completed or missed appointment keeps its
 * doctor's slot (`patientTimeBack`), so it is pending with its patient's time alone, and only
 * until the appointment is over: past time collides with no booking.
 */
type PendingAppointmentRelease = { endedAt: number; cause: Cause; slotHeld: boolean; timeHeld: boolean };
/**
 * An appointment a schedule change acknowledged (`ScheduleSet.affectedAppointmentIds`), which the
 * change's request cancels once the schedule is set: pending until it is cancelled, completed or
 * missed. `actor` set the schedule, and the cancellation is made in their name.
 */
type PendingAcknowledged = { doctorId: string; actor: Actor; setAt: number; cause: Cause };
/**
 * A reschedule moves the patient's time, holds the doctor's new slot, moves the appointment and
 * then completes the slot's move. A move of the time (or of the slot, as reschedules did before
 * holds) that the appointment has not followed: it is `at`, while the appointment was last seen at
 * `appointmentStart`. Normally the request's own appointment append follows within moments; a
 * request that died before it leaves the two apart.
 */
type PendingMove = { appointmentStart: string; at: string; movedAt: number; cause: Cause };
/**
 * A slot held at `start` for a reschedule of the appointment, neither completed nor dropped yet:
 * the request that held it died before the appointment moved (the hold is dropped) or after (it
 * is completed). Meanwhile both the old slot and the held one are kept from everyone else.
 * `heldAt` is the event's, as written, which names this hold to the schedule: a retry of the
 * request may have dropped it and held the same time again by the time it is settled.
 */
type PendingSlotHold = { doctorId: string; start: string; heldAt: string; cause: Cause };
/** Reads of an appointment that changes while a reschedule of it is given up; each change is one more try. */
const giveUpAttempts = 5;
/** Whether a listing takes bookings, as the listing says and as its calendar does. */
type Openness = { listingActive: boolean; calendarOpen: boolean };
/**
 * A listing and its calendar last seen out of step, since `since`. A deactivation closes the
 * calendar moments before the listing follows, a reactivation reopens it moments after; a
 * request that died in between leaves a listing that is listed but refuses every booking, or
 * one that is deactivated but bookable.
 */
type PendingCalendar = Openness & { since: number; cause: Cause };

/** The event types this process follows; everything else is filtered out by the store. */
export const holdExpiryEventTypes = [
  'ScheduleSet',
  'DatesHeld',
  'DatesBooked',
  'DatesReleased',
  'BookingExpired',
  'BookingCancelled',
  'SlotBooked',
  'SlotReleased',
  'SlotMoved',
  'SlotRestored',
  'SlotMoveHeld',
  'SlotMoveCompleted',
  'SlotMoveDropped',
  'TimeReserved',
  'TimeReleased',
  'TimeMoved',
  'AppointmentScheduled',
  'AppointmentRescheduled',
  'AppointmentCancelled',
  'AppointmentCompleted',
  'AppointmentMarkedNoShow',
  'CalendarClosed',
  'CalendarReopened',
  'ListingDeactivated',
  'ListingReactivated',
];

export type HoldExpiryOptions = {
  readonly eventStore: EventStore;
  readonly side: CommandSide;
  /**
   * How long a step may be missing after the one before it before it counts as left behind by a
   * crash: a slot held without its appointment, a cancellation, completion or no-show without its
   * release, a slot or time moved without the appointment following, a schedule change without
   * the cancellations of the appointments it acknowledged, a calendar closed or
   * reopened without its listing (or a listing without its calendar). Until then the request is
   * taken to be still on its way (or to be retried by its client, which finishes it).
   */
  readonly orphanSlotGraceMs: number;
  /** Told of each step that failed: `retried` false when it is given up (it needs people to act). */
  readonly onError?: (error: unknown, what: string, retried: boolean) => void;
  /** Told after each round of `run` whether it succeeded (`runSweepLoop`). */
  readonly onAttempt?: (succeeded: boolean) => void;
};

/**
 * Finishes what a request cannot: releases dates whose hold ran out unpaid and expires their
 * booking (also when another hold released them first); frees slots and patient time held for
 * an appointment that was never created because the process died between the appends; gives
 * back what a cancelled booking or appointment held when the cancellation died before doing so,
 * and the patient's time of an appointment completed or missed, not over yet, when that request
 * died before it; moves a slot or patient time back to its appointment when a reschedule died
 * after moving them and before moving the appointment (also when the appointment was held or
 * missed since: its slot goes back, its time is released); cancels the appointments a schedule
 * change acknowledged when its request died before cancelling them; and closes or reopens a
 * listing's calendar that a deactivation or reactivation died without bringing in line with the listing.
 * It follows the log from the start, so after a crash it knows again all that is still pending,
 * and only that: what a later event shows done leaves the set. Each command it sends has an id
 * derived from the event that caused it, so two instances, or a restart, never append anything
 * twice.
 */
export class HoldExpiryProcess {
  private readonly holds = new Map<string, PendingHold>();
  private readonly slots = new Map<string, PendingSlot>();
  private readonly times = new Map<string, PendingTime>();
  private readonly cancelledBookings = new Map<string, PendingRelease>();
  private readonly endedAppointments = new Map<string, PendingAppointmentRelease>();
  /** By appointment id: appointments a schedule change acknowledged, not yet cancelled (or held, or missed). */
  private readonly acknowledged = new Map<string, PendingAcknowledged>();
  /** By appointment id, as are `movedTimes`; each holds only moves the appointment has not followed. */
  private readonly movedSlots = new Map<string, PendingMove>();
  private readonly movedTimes = new Map<string, PendingMove>();
  /** By appointment id: holds for a move that neither completed nor were dropped. */
  private readonly heldSlots = new Map<string, PendingSlotHold>();
  /** By listing id; only listings whose calendar was last seen out of step with them. */
  private readonly calendars = new Map<string, PendingCalendar>();

  constructor(private readonly options: HoldExpiryOptions) {}

  /** Keeps the pending holds, slots, cancellations, moves and calendars in step with one event. */
  observe(event: RecordedEvent): void {
    switch (event.type) {
      case 'DatesHeld': {
        const held = aggregates.listingCalendar.codec.decode(event);
        if (held.type !== 'DatesHeld') return;
        const { bookingId, listingId, holdExpiresAt } = held.data;
        this.holds.set(bookingId, { listingId, holdExpiresAt: Date.parse(holdExpiresAt), cause: causeOf(event), status: 'held' });
        return;
      }
      case 'DatesBooked': {
        const booked = aggregates.listingCalendar.codec.decode(event);
        if (booked.type !== 'DatesBooked') return;
        this.holds.delete(booked.data.bookingId);
        return;
      }
      case 'DatesReleased': {
        const released = aggregates.listingCalendar.codec.decode(event);
        if (released.type !== 'DatesReleased') return;
        const { bookingId, reason } = released.data;
        this.cancelledBookings.delete(bookingId);
        const hold = this.holds.get(bookingId);
        if (reason === 'expired' && hold?.status === 'held') this.holds.set(bookingId, { ...hold, status: 'dates-released' });
        else this.holds.delete(bookingId);
        return;
      }
      case 'BookingExpired': {
        const expired = aggregates.booking.codec.decode(event);
        if (expired.type !== 'BookingExpired') return;
        const hold = this.holds.get(expired.data.bookingId);
        if (hold?.status === 'held') this.holds.set(expired.data.bookingId, { ...hold, status: 'booking-expired' });
        else this.holds.delete(expired.data.bookingId);
        return;
      }
      case 'BookingCancelled': {
        const cancelled = aggregates.booking.codec.decode(event);
        if (cancelled.type !== 'BookingCancelled') return;
        const { bookingId } = cancelled.data;
        // A cancelled booking no longer expires: what it holds is the cancellation's to give back,
        // unless its dates went back as expired since they were last held (a payment came too late).
        const hold = this.holds.get(bookingId);
        this.holds.delete(bookingId);
        if (hold?.status !== 'dates-released') this.cancelledBookings.set(bookingId, { cancelledAt: occurredAt(event).getTime(), cause: causeOf(event) });
        return;
      }
      case 'ScheduleSet': {
        const set = aggregates.doctorSchedule.codec.decode(event);
        if (set.type !== 'ScheduleSet') return;
        const { doctorId, affectedAppointmentIds } = set.data;
        const actor = scheduleSetter(event, doctorId);
        for (const appointmentId of affectedAppointmentIds) {
          this.acknowledged.set(appointmentId, { doctorId, actor, setAt: occurredAt(event).getTime(), cause: causeOf(event) });
        }
        return;
      }
      case 'SlotBooked': {
        const booked = aggregates.doctorSchedule.codec.decode(event);
        if (booked.type !== 'SlotBooked') return;
        const { appointmentId, doctorId, patientId, bookedAt } = booked.data;
        this.slots.set(appointmentId, { doctorId, patientId, bookedAt: Date.parse(bookedAt), cause: causeOf(event) });
        return;
      }
      case 'TimeReserved': {
        const reserved = aggregates.patientAgenda.codec.decode(event);
        if (reserved.type !== 'TimeReserved') return;
        const { appointmentId, patientId } = reserved.data;
        if (this.slots.has(appointmentId)) return;
        this.times.set(appointmentId, { patientId, reservedAt: occurredAt(event).getTime(), cause: causeOf(event) });
        return;
      }
      case 'SlotReleased':
      case 'AppointmentScheduled': {
        const appointmentId = event.data.appointmentId;
        if (typeof appointmentId !== 'string') return;
        this.slots.delete(appointmentId);
        if (event.type === 'AppointmentScheduled') this.times.delete(appointmentId);
        if (event.type === 'SlotReleased') {
          // Released is not moved: what is left of a cancellation is the cancellation backstop's.
          this.movedSlots.delete(appointmentId);
          this.appointmentReleased(appointmentId, { slotHeld: false });
        }
        return;
      }
      case 'TimeReleased': {
        const appointmentId = event.data.appointmentId;
        if (typeof appointmentId !== 'string') return;
        this.times.delete(appointmentId);
        this.movedTimes.delete(appointmentId);
        this.appointmentReleased(appointmentId, { timeHeld: false });
        return;
      }
      case 'AppointmentCancelled': {
        const appointmentId = event.data.appointmentId;
        if (typeof appointmentId !== 'string') return;
        this.movedSlots.delete(appointmentId);
        this.movedTimes.delete(appointmentId);
        this.acknowledged.delete(appointmentId);
        this.endedAppointments.set(appointmentId, { endedAt: occurredAt(event).getTime(), cause: causeOf(event), slotHeld: true, timeHeld: true });
        return;
      }
      case 'AppointmentCompleted':
      case 'AppointmentMarkedNoShow': {
        const appointmentId = event.data.appointmentId;
        if (typeof appointmentId !== 'string') return;
        // A move the appointment never followed stays pending: the slot it kept would block the
        // time a failed reschedule moved it to for good (it goes back to the visit's own time),
        // and the patient's time there is released with the rest of it.
        this.acknowledged.delete(appointmentId);
        this.endedAppointments.set(appointmentId, { endedAt: occurredAt(event).getTime(), cause: causeOf(event), slotHeld: false, timeHeld: true });
        return;
      }
      case 'SlotMoved':
      case 'SlotRestored':
      case 'SlotMoveCompleted': {
        const moved = aggregates.doctorSchedule.codec.decode(event);
        if (moved.type === 'SlotMoved' || moved.type === 'SlotRestored') noteMove(this.movedSlots, moved.data, event);
        if (moved.type !== 'SlotMoveCompleted') return;
        this.heldSlots.delete(moved.data.appointmentId);
        // Completed only where the appointment is (after its own append, or found there by this
        // process): it settles a move waiting for the slot to follow, and starts none.
        if (this.movedSlots.has(moved.data.appointmentId)) noteMove(this.movedSlots, moved.data, event);
        return;
      }
      case 'SlotMoveHeld': {
        const held = aggregates.doctorSchedule.codec.decode(event);
        if (held.type !== 'SlotMoveHeld') return;
        const { appointmentId, doctorId, start, heldAt } = held.data;
        this.heldSlots.set(appointmentId, { doctorId, start, heldAt, cause: causeOf(event) });
        return;
      }
      case 'SlotMoveDropped': {
        const appointmentId = event.data.appointmentId;
        if (typeof appointmentId === 'string') this.heldSlots.delete(appointmentId);
        return;
      }
      case 'TimeMoved': {
        const moved = aggregates.patientAgenda.codec.decode(event);
        if (moved.type === 'TimeMoved') noteMove(this.movedTimes, moved.data, event);
        return;
      }
      case 'AppointmentRescheduled': {
        const rescheduled = aggregates.appointment.codec.decode(event);
        if (rescheduled.type !== 'AppointmentRescheduled') return;
        const { appointmentId, previousStart, start } = rescheduled.data;
        for (const pending of [this.movedSlots, this.movedTimes]) {
          if (pending.has(appointmentId)) noteAppointmentStart(pending, appointmentId, start);
          // No move was waiting for this reschedule: it was moved back before the appointment
          // landed (a retry of the request racing this process's move back), or it was never
          // needed (another reschedule to the same time moved it). Checked after the grace period.
          else pending.set(appointmentId, { appointmentStart: start, at: previousStart, movedAt: occurredAt(event).getTime(), cause: causeOf(event) });
        }
        return;
      }
      case 'ListingDeactivated':
      case 'ListingReactivated': {
        const changed = aggregates.listing.codec.decode(event);
        if (changed.type !== 'ListingDeactivated' && changed.type !== 'ListingReactivated') return;
        this.noteOpenness(changed.data.listingId, 'listingActive', changed.type === 'ListingReactivated', event);
        return;
      }
      case 'CalendarClosed':
      case 'CalendarReopened': {
        const changed = aggregates.listingCalendar.codec.decode(event);
        if (changed.type !== 'CalendarClosed' && changed.type !== 'CalendarReopened') return;
        if (changed.type === 'CalendarClosed' && changed.data.alreadyClosed) {
          this.noteClosedAgain(changed.data.listingId);
          return;
        }
        this.noteOpenness(changed.data.listingId, 'calendarOpen', changed.type === 'CalendarReopened', event);
        return;
      }
    }
  }

  /**
   * One side of a listing's openness changed. With nothing pending the two were in step, and each
   * of these events turns its side over, so the other side is still where this one was.
   */
  private noteOpenness(listingId: string, which: keyof Openness, open: boolean, event: RecordedEvent): void {
    const last = this.calendars.get(listingId);
    const seen: Openness = { listingActive: last?.listingActive ?? !open, calendarOpen: last?.calendarOpen ?? !open };
    seen[which] = open;
    if (seen.listingActive === seen.calendarOpen) this.calendars.delete(listingId);
    else this.calendars.set(listingId, { ...seen, since: last?.since ?? occurredAt(event).getTime(), cause: last?.cause ?? causeOf(event) });
  }

  /**
   * A close recorded on a calendar closed already (after a deactivation) turned nothing over:
   * with nothing pending the two sides were in step, closed and inactive, and stay so; a pending
   * side that still had the calendar open had not yet seen it closed.
   */
  private noteClosedAgain(listingId: string): void {
    const last = this.calendars.get(listingId);
    if (!last) return;
    if (!last.listingActive) this.calendars.delete(listingId);
    else this.calendars.set(listingId, { ...last, calendarOpen: false });
  }

  /** An ended appointment's slot or time went back; once all it held has, nothing is left to do for it. */
  private appointmentReleased(appointmentId: string, released: { slotHeld: false } | { timeHeld: false }): void {
    const pending = this.endedAppointments.get(appointmentId);
    if (!pending) return;
    const next = { ...pending, ...released };
    if (next.slotHeld || next.timeHeld) this.endedAppointments.set(appointmentId, next);
    else this.endedAppointments.delete(appointmentId);
  }

  /**
   * Acts on every hold, slot, cancellation, move and calendar that is due. A step that fails is
   * reported, counted `failed` and tried again at the next sweep: it never stops this one.
   */
  async sweep(signal?: AbortSignal): Promise<SweepSummary> {
    const now = this.options.side.clock.now().getTime();
    const grace = this.options.orphanSlotGraceMs;
    const tally = { progressed: 0, failed: 0 };
    await this.settleDue(
      tally,
      signal,
      this.holds,
      now,
      (hold) => hold.holdExpiresAt,
      (id, hold) => this.expireHold(id, hold),
      (id) => `expire hold of booking ${id}`,
    );
    await this.settleDue(
      tally,
      signal,
      this.slots,
      now,
      (slot) => slot.bookedAt + grace,
      (id, slot) => this.releaseOrphanSlot(id, slot),
      (id) => `release slot of appointment ${id}`,
    );
    await this.settleDue(
      tally,
      signal,
      this.times,
      now,
      (time) => time.reservedAt + grace,
      (id, time) => this.releaseOrphanTime(id, time),
      (id) => `release patient time of appointment ${id}`,
    );
    await this.settleDue(
      tally,
      signal,
      this.cancelledBookings,
      now,
      (pending) => pending.cancelledAt + grace,
      (id, pending) => this.releaseCancelledBooking(id, pending),
      (id) => `release dates of cancelled booking ${id}`,
    );
    await this.settleDue(
      tally,
      signal,
      this.endedAppointments,
      now,
      (pending) => pending.endedAt + grace,
      (id, pending) => this.releaseEndedAppointment(id, pending),
      (id) => `release what cancelled, completed or missed appointment ${id} still holds`,
    );
    // Before the moves: a hold completed brings the slot to its appointment, which settles a move too.
    await this.settleDue(
      tally,
      signal,
      this.heldSlots,
      now,
      (hold) => Date.parse(hold.heldAt) + grace,
      (id, hold) => this.settleSlotHold(id, hold),
      (id) => `complete or drop the slot held for a move of appointment ${id}`,
    );
    await this.settleDue(
      tally,
      signal,
      this.movedSlots,
      now,
      (move) => move.movedAt + grace,
      (id, move) => this.moveSlotBack(id, move),
      (id) => `move the slot of appointment ${id} back`,
    );
    await this.settleDue(
      tally,
      signal,
      this.movedTimes,
      now,
      (move) => move.movedAt + grace,
      (id, move) => this.moveTimeBack(id, move),
      (id) => `move the patient time of appointment ${id} back`,
    );
    // After the holds and moves: a reschedule under way is given up or completed first, so the
    // appointment's time, which decides whether the schedule still leaves it out, is settled; one
    // moved into the new hours is kept. Its cancellation gives back the slot and time it holds then.
    await this.settleDue(
      tally,
      signal,
      this.acknowledged,
      now,
      (pending) => pending.setAt + grace,
      (id, pending) => this.cancelAcknowledged(id, pending),
      (id) => `cancel appointment ${id}, which a schedule change acknowledged`,
    );
    await this.settleDue(
      tally,
      signal,
      this.calendars,
      now,
      (pending) => pending.since + grace,
      (id, pending) => this.alignCalendar(id, pending),
      (id) => `bring the calendar of listing ${id} in line with the listing`,
    );
    return tally;
  }

  /** Acts on each entry of `pending` due by `now`, counting each in `tally`. */
  private async settleDue<Entry>(
    tally: { progressed: number; failed: number },
    signal: AbortSignal | undefined,
    pending: Map<string, Entry>,
    now: number,
    dueAt: (entry: Entry) => number,
    act: (id: string, entry: Entry) => Promise<void>,
    what: (id: string) => string,
  ): Promise<void> {
    for (const [id, entry] of pending) {
      // Stopping: what is left is due at the next sweep, here or in another instance.
      if (signal?.aborted) break;
      if (dueAt(entry) > now) continue;
      if (await this.attempt(() => act(id, entry), what(id))) tally.progressed++;
      else tally.failed++;
    }
  }

  /** Until `signal` aborts, every `sweepEveryMs`: reads what the log gained, then settles what is due (`runSweepLoop`). */
  run(signal: AbortSignal, sweepEveryMs: number): Promise<void> {
    const { eventStore, onError, onAttempt } = this.options;
    return runSweepLoop(this, { eventStore, eventTypes: holdExpiryEventTypes, sweepEveryMs, onError: (error) => onError?.(error, 'read the log', true), onAttempt }, signal);
  }

  /**
   * How much is pending; `cancellations` counts completions and no-shows still holding their
   * patient's time too, and appointments a schedule change acknowledged that are still to be cancelled.
   */
  get pending(): { holds: number; slots: number; times: number; cancellations: number; moves: number; calendars: number } {
    return {
      holds: this.holds.size,
      slots: this.slots.size,
      times: this.times.size,
      cancellations: this.cancelledBookings.size + this.endedAppointments.size + this.acknowledged.size,
      moves: this.movedSlots.size + this.movedTimes.size + this.heldSlots.size,
      calendars: this.calendars.size,
    };
  }

  /**
   * Whichever of the two ends of a lapsed hold is missing. Both steps run under the same command
   * id whoever released the dates, so a replay of either is recognised.
   */
  private async expireHold(bookingId: string, hold: PendingHold): Promise<void> {
    const { side } = this.options;
    const request = systemRequest(hold.cause, 'expire');
    let paid = false;
    // Only a booking still waiting for its payment expires: paid or cancelled meanwhile, it has
    // moved on.
    if (hold.status !== 'booking-expired') paid = (await expireUnpaidBooking(side, bookingId, request)).paid;
    // A booking paid, in time or after its hold lapsed, keeps its dates: the payment process books
    // them next, and a new hold in their way displaces them only once it found them unpaid (a
    // payment landing after that check loses them, and the booking is then cancelled and
    // refunded). Otherwise the dates go back, also when there is no booking at all (the request
    // died after holding them).
    if (hold.status !== 'dates-released' && !paid) {
      await side.handlers.listingCalendar.handle(
        listingCalendarStreamId(hold.listingId),
        { type: 'ReleaseDates', data: { listingId: hold.listingId, bookingId, reason: 'expired', now: side.clock.now().toISOString() } },
        request,
      );
    }
    this.holds.delete(bookingId);
  }

  /** Releases by booking id, so dates someone else holds now are never touched. */
  private async releaseCancelledBooking(bookingId: string, pending: PendingRelease): Promise<void> {
    const { side } = this.options;
    const { state } = await side.handlers.booking.read(bookingStreamId(bookingId));
    await releaseDates(side, state, 'cancelled', systemRequest(pending.cause, 'release-cancelled'));
    this.cancelledBookings.delete(bookingId);
  }

  /**
   * Releases by appointment id, so a slot or time someone else took since is never touched. The
   * slot goes back only for a cancellation, as the appointment now says: a completed or missed
   * appointment keeps it, whatever the pending entry says.
   *
   * A completed or missed appointment already over keeps its patient's time too: past time
   * collides with no booking (see `Reservations`), and the completions recorded before this
   * backstop existed, all found on its first read of the log, would each cost an append in one
   * sweep while every other step waited. Time a failed reschedule moved into the future is
   * `moveTimeBack`'s, which releases it.
   */
  private async releaseEndedAppointment(appointmentId: string, pending: PendingAppointmentRelease): Promise<void> {
    const { side } = this.options;
    const { state } = await side.handlers.appointment.read(appointmentStreamId(appointmentId));
    const over = isEnded(state) && Date.parse(state.end) <= side.clock.now().getTime();
    if (isMade(state) && !over) {
      const request = systemRequest(pending.cause, `release-${state.status}`);
      if (state.status === 'cancelled' && pending.slotHeld) await releaseAppointmentTime(side, state, request);
      else if (pending.timeHeld) await patientTimeBack(side, state, request);
    }
    this.endedAppointments.delete(appointmentId);
  }

  /**
   * The cancellation the schedule change's request died before making, in the name of whoever set
   * the schedule, through the usual cancellation (slot and time given back). Only while the
   * schedule in force still leaves the appointment's own time out and it has not ended; one moved
   * into the new hours, or cancelled by the patient meanwhile, is left as it is (`cancelAffectedAppointments`).
   */
  private async cancelAcknowledged(appointmentId: string, pending: PendingAcknowledged): Promise<void> {
    const system = systemRequest(pending.cause, `cancel-acknowledged:${appointmentId}`);
    const request = { ...system, context: { ...system.context, actor: pending.actor } };
    await cancelAffectedAppointments(this.options.side, pending.doctorId, [appointmentId], () => request);
    this.acknowledged.delete(appointmentId);
  }

  /**
   * The id is given up first (`AbandonAppointment`, on the appointment's own stream), then the
   * slot and time go back, only if it was. A late retry of the request that died and this sweep
   * then race on one stream: either the appointment is made and keeps its slot, or the id is
   * given up and the retry is refused (409 appointment-abandoned). Looking for the appointment
   * and then releasing, as two steps, let a retry make it in between: an appointment without its
   * slot, which the next patient booked.
   */
  private async releaseOrphanSlot(appointmentId: string, slot: PendingSlot): Promise<void> {
    const request = systemRequest(slot.cause, 'orphan');
    if (await this.abandoned(appointmentId, request)) await releaseAppointmentTime(this.options.side, { appointmentId, ...slot }, request);
    this.slots.delete(appointmentId);
  }

  /** Gives the id up unless the appointment was made: whether it is given up (now or before). */
  private async abandoned(appointmentId: string, request: CommandOptions): Promise<boolean> {
    const { side } = this.options;
    const claim = await side.handlers.appointment.handle(
      appointmentStreamId(appointmentId),
      { type: 'AbandonAppointment', data: { appointmentId, now: side.clock.now().toISOString() } },
      request,
    );
    return claim.state.status === 'abandoned';
  }

  /** As `releaseOrphanSlot`, for the patient's time alone; mostly the id was given up long since. */
  private async releaseOrphanTime(appointmentId: string, time: PendingTime): Promise<void> {
    const request = systemRequest(time.cause, 'orphan-time');
    if (await this.abandoned(appointmentId, request)) {
      const { patientId } = time;
      await this.options.side.handlers.patientAgenda.handle(patientAgendaStreamId(patientId), { type: 'ReleaseTime', data: { patientId, appointmentId } }, request);
    }
    this.times.delete(appointmentId);
  }

  /**
   * The slot back to where the appointment is, from where it is now. The appointment decides,
   * not the slot: it is what the patient and the doctor were told, and the request that moved
   * the slot failed. Restored, not moved: the appointment's time may be off the grid of a schedule
   * changed since, or have begun, and it is still the appointment's. So for one completed or
   * missed since: its slot is the visit's record, at the visit's time.
   */
  private async moveSlotBack(appointmentId: string, move: PendingMove): Promise<void> {
    const { side } = this.options;
    const appointment = await this.slotHolder(appointmentId);
    const schedule = appointment && doctorScheduleStreamId(appointment.doctorId);
    const state = schedule && (await side.handlers.doctorSchedule.read(schedule)).state;
    // A hold for a move under way is settled first (`settleSlotHold`): the appointment there, the
    // slot follows it by completing the move; restored there instead, the hold would refuse it.
    if (state && slotHoldOf(state, appointmentId)) return;
    const slot = state && slotOf(state, appointmentId);
    if (!appointment || !schedule || !slot || slot.start === appointment.start) {
      this.movedSlots.delete(appointmentId);
      return;
    }
    const { start, end } = appointment;
    const now = side.clock.now();
    const restore: RestoreSlot = { type: 'RestoreSlot', data: { appointmentId, from: slot.start, start, end, now: now.toISOString() } };
    await this.movingBack(this.movedSlots, appointmentId, `slot of appointment ${appointmentId} back to ${start}`, async () => {
      try {
        await side.handlers.doctorSchedule.handle(schedule, restore, systemRequest(move.cause, 'move-back'));
      } catch (error) {
        // Refused (someone took the old slot) for an appointment that has begun: it needs no slot
        // to keep its time from others any more, and the one the failed reschedule took is free
        // time held by nobody. It is freed; the refusal is still reported.
        if (error instanceof DomainError && Date.parse(start) <= now.getTime()) {
          await side.handlers.doctorSchedule.handle(schedule, { type: 'ReleaseSlot', data: { appointmentId } }, systemRequest(move.cause, 'release-begun'));
        }
        throw error;
      }
    });
    // A retry of the failed request may have landed meanwhile, moving the appointment after all:
    // the slot follows it at once (the retry looks again after its own append too).
    const after = await this.openAppointment(appointmentId);
    if (after && after.start !== start) await slotFollows(side, after, systemRequest(move.cause, 'slot-follows'), side.clock.now().toISOString());
  }

  /**
   * The appointment decides, as for a move: there already (the request died after moving it), the
   * hold becomes its slot and the old slot is freed; anywhere else, or cancelled, the hold is
   * dropped and the appointment keeps its slot, which nobody could take meanwhile. A hold found
   * completed or dropped already settles it: nothing is left to do.
   *
   * An open appointment elsewhere has its reschedule given up before the hold is dropped: the
   * request may be slow rather than dead, its own append on its way, and that append, pinned to
   * the version the request read, is refused once the mark is in (the request then moves back
   * what it moved, or tries again from the appointment as it is). Dropped first, the hold left
   * the new time free for anyone while the appointment could still land there.
   *
   * Both name the hold by when it was held: the request, refused once the mark is in, drops its
   * hold itself and may try again from the appointment as it is, holding the same time anew and
   * landing its append. Dropping "the appointment's hold at `to`" then freed that new hold, which
   * the request was about to complete, and the time went to someone else.
   */
  private async settleSlotHold(appointmentId: string, hold: PendingSlotHold): Promise<void> {
    const { side } = this.options;
    const schedule = doctorScheduleStreamId(hold.doctorId);
    const request = systemRequest(hold.cause, 'settle-hold');
    const to = hold.start;
    const { heldAt } = hold;
    try {
      const appointment = await this.rescheduleGivenUp(appointmentId, to, hold.cause);
      if (appointment?.start === to) {
        await side.handlers.doctorSchedule.handle(schedule, { type: 'CompleteSlotMove', data: { appointmentId, to, heldAt, now: side.clock.now().toISOString() } }, request);
      } else {
        await side.handlers.doctorSchedule.handle(schedule, { type: 'DropSlotHold', data: { appointmentId, to, heldAt } }, request);
      }
    } catch (error) {
      // Refused only when the hold is gone: completed or dropped by someone else, or a newer hold
      // at `to` in its place, which is the retry's to complete (and this process's, once its own
      // `SlotMoveHeld` is read, should that retry die too).
      if (!(error instanceof DomainError)) throw error;
    }
    this.heldSlots.delete(appointmentId);
  }

  /**
   * The appointment while it keeps its slot (as `slotHolder`), once no reschedule to `to` that
   * read it earlier can land any more: one open and elsewhere has the reschedule given up,
   * pinned to the version read. Losing that race means something landed meanwhile, mostly the
   * request's own append: the appointment is read again, and found at `to`. Each mark's id names
   * the version it was decided on: a sweep that died after its mark, before the drop, marks again
   * on its next turn, fencing a retry that read the appointment after the first mark.
   */
  private async rescheduleGivenUp(appointmentId: string, to: string, cause: Cause) {
    const { side } = this.options;
    const stream = appointmentStreamId(appointmentId);
    for (let attempt = 1; ; attempt++) {
      const { state, version } = await side.handlers.appointment.read(stream);
      if (!isOpen(state) || state.start === to) return isEnded(state) || isOpen(state) ? state : undefined;
      try {
        const giveUp: GiveUpReschedule = { type: 'GiveUpReschedule', data: { appointmentId, to, now: side.clock.now().toISOString() } };
        await side.handlers.appointment.handle(stream, giveUp, { ...systemRequest(cause, `give-up@${version}`), expectedVersion: version });
        return state;
      } catch (error) {
        if (!(error instanceof VersionMismatchError) || attempt >= giveUpAttempts) throw error;
      }
    }
  }

  /**
   * The patient's time back to the appointment's, as the slot. A completed or missed appointment
   * needs none of it (`patientTimeBack`): it is released, wherever it is; the release, once read,
   * settles this.
   */
  private async moveTimeBack(appointmentId: string, move: PendingMove): Promise<void> {
    const { side } = this.options;
    const appointment = await this.slotHolder(appointmentId);
    const agenda = appointment && patientAgendaStreamId(appointment.patientId);
    const time = agenda && reservationOf((await side.handlers.patientAgenda.read(agenda)).state, appointmentId);
    if (!appointment || !agenda || !time || time.start === appointment.start) {
      this.movedTimes.delete(appointmentId);
      return;
    }
    if (isEnded(appointment)) {
      await patientTimeBack(side, appointment, systemRequest(move.cause, 'release-ended'));
      return;
    }
    const { patientId, start: newStart, end: newEnd } = appointment;
    await this.movingBack(this.movedTimes, appointmentId, `patient time of appointment ${appointmentId} back to ${newStart}`, () =>
      side.handlers.patientAgenda.handle(agenda, { type: 'MoveTime', data: { patientId, appointmentId, from: time.start, newStart, newEnd } }, systemRequest(move.cause, 'move-back')),
    );
    // As the slot's: a retry that landed meanwhile has the time follow it at once.
    const after = await this.openAppointment(appointmentId);
    if (after && after.start !== newStart) await timeFollows(side, after, systemRequest(move.cause, 'time-follows'));
  }

  /** The appointment, while it can still be rescheduled; a cancelled one is the cancellation backstop's. */
  private async openAppointment(appointmentId: string) {
    const state = await this.appointment(appointmentId);
    return isOpen(state) ? state : undefined;
  }

  /** The appointment, while it keeps its doctor's slot: open, completed or missed; not cancelled. */
  private async slotHolder(appointmentId: string) {
    const state = await this.appointment(appointmentId);
    return isOpen(state) || isEnded(state) ? state : undefined;
  }

  private async appointment(appointmentId: string): Promise<AppointmentState> {
    return (await this.options.side.handlers.appointment.read(appointmentStreamId(appointmentId))).state;
  }

  /**
   * A move back that lands stays pending until its own event is read: that event brings the slot
   * or time back to the appointment, which settles it, as an undo by the request would.
   */
  private async movingBack(
    pending: Map<string, PendingMove>,
    appointmentId: string,
    what: string,
    move: () => Promise<unknown>,
  ): Promise<void> {
    try {
      await move();
    } catch (error) {
      if (!(error instanceof DomainError)) throw error;
      // Refused: mostly someone booked the old slot (or the patient filled the old time) since it
      // was freed. Nothing this process may do is better than stopping here: the appointment keeps
      // its time, which is what its patient was last told, and the doctor has two appointments
      // then to sort out (the slot stays held where the failed reschedule put it). Moving the
      // appointment instead would carry out a request that failed; trying again would refuse for
      // as long as the other booking stands. So it is dropped, loudly, not retried.
      this.options.onError?.(error, `move the ${what} back (refused: ${error.code}; a double booking for people to sort out)`, false);
      pending.delete(appointmentId);
    }
  }

  /**
   * The calendar follows the listing: whether the listing is active is what its owner was told
   * and what searches show, and the request that left the calendar behind failed. Both are read
   * afresh, as they are now, not as the log was when the entry was made. A close or reopen that
   * lands stays pending until its own event is read, which settles it; one found in line already
   * settles at once.
   */
  private async alignCalendar(listingId: string, pending: PendingCalendar): Promise<void> {
    const steps = await calendarFollowsListing(this.options.side, listingId, systemRequest(pending.cause, 'calendar-follows'));
    if (!steps.some((step) => step.events.length > 0)) this.calendars.delete(listingId);
  }

  /** A rule refusing the step means the world moved on (paid in time, cancelled): nothing left to do. */
  private async attempt(step: () => Promise<void>, what: string): Promise<boolean> {
    try {
      await step();
      return true;
    } catch (error) {
      if (error instanceof DomainError) return true;
      this.options.onError?.(error, what, true);
      return false;
    }
  }
}

/** Scheduled or rescheduled: it can still move. */
function isOpen(state: AppointmentState): state is Extract<AppointmentState, { status: 'scheduled' | 'rescheduled' }> {
  return state.status === 'scheduled' || state.status === 'rescheduled';
}

/** Held or missed: it keeps its doctor's slot and needs none of its patient's time. */
function isEnded(state: AppointmentState): state is Extract<AppointmentState, { status: 'completed' | 'noShow' }> {
  return state.status === 'completed' || state.status === 'noShow';
}

/**
 * A slot or time moved from `previousStart` to `start`. The first move the appointment has not
 * followed starts from the appointment's start; a later one back there is an undo and settles it.
 */
function noteMove(
  pending: Map<string, PendingMove>,
  { appointmentId, previousStart, start }: { appointmentId: string; previousStart: string; start: string },
  event: RecordedEvent,
): void {
  const appointmentStart = pending.get(appointmentId)?.appointmentStart ?? previousStart;
  if (start === appointmentStart) pending.delete(appointmentId);
  else pending.set(appointmentId, { appointmentStart, at: start, movedAt: occurredAt(event).getTime(), cause: causeOf(event) });
}

/** The appointment moved to `start`: a slot or time already there has been followed. */
function noteAppointmentStart(pending: Map<string, PendingMove>, appointmentId: string, start: string): void {
  const move = pending.get(appointmentId);
  if (!move) return;
  if (move.at === start) pending.delete(appointmentId);
  else pending.set(appointmentId, { ...move, appointmentStart: start });
}

/** Who set the schedule, as its event records them; the doctor, should the record not say. */
function scheduleSetter(event: RecordedEvent, doctorId: string): Actor {
  const recorded = actorSchema.safeParse({ id: event.metadata.actorId, roles: event.metadata.actorRoles });
  return recorded.success ? recorded.data : { id: doctorId, roles: ['DOCTOR'] };
}

function systemRequest(cause: Cause, step: string): CommandOptions {
  return commandCausedBy(holdExpiryName, cause, step);
}
