import { appointmentStreamId } from '../../domain/appointment/appointment.decider.js';
import { bookingStreamId } from '../../domain/booking/booking.decider.js';
import { listingCalendarStreamId } from '../../domain/listing-calendar/listing-calendar.decider.js';
import { DomainError } from '../../domain/shared/domain-error.js';
import { aggregates } from '../aggregates/aggregates.js';
import { releaseAppointmentTime } from '../appointments/appointment.use-cases.js';
import { releaseDates } from '../bookings/booking.use-cases.js';
import type { CommandSide } from '../command-handlers.js';
import type { CommandOptions } from '../command-handling/handle-command.js';
import { sleep } from '../sleep.js';
import type { EventStore, Position, RecordedEvent } from '../ports/event-store.js';

/**
 * What a command sent later needs of the event that caused it. Not the event itself: every
 * pending hold is kept until it is paid or lapses, and a whole event (data, metadata, chain
 * hashes) is about ten times its size.
 */
type Cause = { readonly id: string; readonly correlationId: string };

/**
 * A hold that lapses unpaid ends in two appends: the booking expired and its dates released as
 * `expired`. This process's sweep expires first; another consumer's hold on the same dates
 * releases first, in its own decision. The hold stays pending until both are seen, so whichever
 * is missing is done, whoever did the other and whenever the process last stopped.
 */
type PendingHold = { listingId: string; holdExpiresAt: number; cause: Cause; status: 'held' | 'booking-expired' | 'dates-released' };
type PendingSlot = { doctorId: string; patientId: string; bookedAt: number; cause: Cause };
/** A cancellation whose request may have died before giving back what it held. */
type PendingRelease = { cancelledAt: number; cause: Cause };
type PendingAppointmentRelease = PendingRelease & { slotHeld: boolean; timeHeld: boolean };

/** The event types this process follows; everything else is filtered out by the store. */
export const holdExpiryEventTypes = [
  'DatesHeld',
  'DatesBooked',
  'DatesReleased',
  'BookingExpired',
  'BookingCancelled',
  'SlotBooked',
  'SlotReleased',
  'TimeReleased',
  'AppointmentScheduled',
  'AppointmentCancelled',
];

export type HoldExpiryOptions = {
  readonly eventStore: EventStore;
  readonly side: CommandSide;
  /**
   * How long a step may be missing after the one before it before it counts as left behind by a
   * crash: a slot held without its appointment, a cancellation without its release. Until then
   * the request is taken to be still on its way.
   */
  readonly orphanSlotGraceMs: number;
  readonly onError?: (error: unknown, what: string) => void;
};

/**
 * Finishes what a request cannot: releases dates whose hold ran out unpaid and expires their
 * booking (also when another hold released them first); frees slots and patient time held for
 * an appointment that was never created because the process died between the appends; and gives
 * back what a cancelled booking or appointment held when the cancellation died before doing so.
 * It follows the log from the start, so after a crash it knows again all that is still pending,
 * and only that: what a later event shows done leaves the set. Each command it sends has an id
 * derived from the event that caused it, so two instances, or a restart, never append anything
 * twice.
 */
export class HoldExpiryProcess {
  private readonly holds = new Map<string, PendingHold>();
  private readonly slots = new Map<string, PendingSlot>();
  private readonly cancelledBookings = new Map<string, PendingRelease>();
  private readonly cancelledAppointments = new Map<string, PendingAppointmentRelease>();

  constructor(private readonly options: HoldExpiryOptions) {}

  /** Keeps the pending holds, slots and cancellations in step with one event. */
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
        if (hold?.status !== 'dates-released') this.cancelledBookings.set(bookingId, { cancelledAt: occurredAt(event), cause: causeOf(event) });
        return;
      }
      case 'SlotBooked': {
        const booked = aggregates.doctorSchedule.codec.decode(event);
        if (booked.type !== 'SlotBooked') return;
        const { appointmentId, doctorId, patientId, bookedAt } = booked.data;
        this.slots.set(appointmentId, { doctorId, patientId, bookedAt: Date.parse(bookedAt), cause: causeOf(event) });
        return;
      }
      case 'SlotReleased':
      case 'AppointmentScheduled': {
        const appointmentId = event.data.appointmentId;
        if (typeof appointmentId !== 'string') return;
        this.slots.delete(appointmentId);
        if (event.type === 'SlotReleased') this.appointmentReleased(appointmentId, { slotHeld: false });
        return;
      }
      case 'TimeReleased': {
        const appointmentId = event.data.appointmentId;
        if (typeof appointmentId === 'string') this.appointmentReleased(appointmentId, { timeHeld: false });
        return;
      }
      case 'AppointmentCancelled': {
        const appointmentId = event.data.appointmentId;
        if (typeof appointmentId !== 'string') return;
        this.cancelledAppointments.set(appointmentId, { cancelledAt: occurredAt(event), cause: causeOf(event), slotHeld: true, timeHeld: true });
        return;
      }
    }
  }

  /** A cancelled appointment's slot or time went back; once both have, nothing is left to do for it. */
  private appointmentReleased(appointmentId: string, released: { slotHeld: false } | { timeHeld: false }): void {
    const pending = this.cancelledAppointments.get(appointmentId);
    if (!pending) return;
    const next = { ...pending, ...released };
    if (next.slotHeld || next.timeHeld) this.cancelledAppointments.set(appointmentId, next);
    else this.cancelledAppointments.delete(appointmentId);
  }

  /** Acts on every hold, slot and cancellation that is due; returns how many it settled. */
  async sweep(): Promise<number> {
    const now = this.options.side.clock.now().getTime();
    let settled = 0;
    const grace = this.options.orphanSlotGraceMs;
    for (const [bookingId, hold] of this.holds) {
      if (hold.holdExpiresAt > now) continue;
      if (await this.attempt(() => this.expireHold(bookingId, hold), `expire hold of booking ${bookingId}`)) settled++;
    }
    for (const [appointmentId, slot] of this.slots) {
      if (slot.bookedAt + grace > now) continue;
      if (await this.attempt(() => this.releaseOrphanSlot(appointmentId, slot), `release slot of appointment ${appointmentId}`)) settled++;
    }
    for (const [bookingId, pending] of this.cancelledBookings) {
      if (pending.cancelledAt + grace > now) continue;
      if (await this.attempt(() => this.releaseCancelledBooking(bookingId, pending), `release dates of cancelled booking ${bookingId}`)) settled++;
    }
    for (const [appointmentId, pending] of this.cancelledAppointments) {
      if (pending.cancelledAt + grace > now) continue;
      const what = `release slot and time of cancelled appointment ${appointmentId}`;
      if (await this.attempt(() => this.releaseCancelledAppointment(appointmentId, pending), what)) settled++;
    }
    return settled;
  }

  /**
   * Until `signal` aborts, every `sweepEveryMs`: reads what the log gained since the last time,
   * then settles what is due. Reads as often as it sweeps, not on every append: nothing here is
   * due sooner than a sweep could act on it, and a live subscription cost a query per append.
   */
  async run(signal: AbortSignal, sweepEveryMs: number): Promise<void> {
    let after: Position | undefined;
    while (!signal.aborted) {
      try {
        for await (const event of this.options.eventStore.readAll({ ...(after ? { after } : {}), filter: { eventTypes: holdExpiryEventTypes } })) {
          this.observe(event);
          after = event.position;
        }
        await this.sweep();
      } catch (error) {
        this.options.onError?.(error, 'read the log');
      }
      await sleep(sweepEveryMs, signal);
    }
  }

  get pending(): { holds: number; slots: number; cancellations: number } {
    return { holds: this.holds.size, slots: this.slots.size, cancellations: this.cancelledBookings.size + this.cancelledAppointments.size };
  }

  /**
   * Whichever of the two ends of a lapsed hold is missing. Both steps run under the same command
   * id whoever released the dates, so a replay of either is recognised.
   */
  private async expireHold(bookingId: string, hold: PendingHold): Promise<void> {
    const { side } = this.options;
    const request = systemRequest(hold.cause, 'expire');
    if (hold.status !== 'booking-expired') {
      // Only a booking still waiting for its payment expires: paid or cancelled meanwhile, it has moved on.
      const booking = await side.handlers.booking.read(bookingStreamId(bookingId));
      if (booking.state.status === 'requested') {
        const now = side.clock.now().toISOString();
        await side.handlers.booking.handle(bookingStreamId(bookingId), { type: 'ExpireBooking', data: { bookingId, now } }, request);
      }
    }
    // No booking at all: the request died after holding the dates. Either way the dates go back.
    if (hold.status !== 'dates-released') {
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

  /** Releases by appointment id, so a slot or time someone else took since is never touched. */
  private async releaseCancelledAppointment(appointmentId: string, pending: PendingAppointmentRelease): Promise<void> {
    const { side } = this.options;
    const { state } = await side.handlers.appointment.read(appointmentStreamId(appointmentId));
    if (state.status !== 'none') await releaseAppointmentTime(side, state, systemRequest(pending.cause, 'release-cancelled'));
    this.cancelledAppointments.delete(appointmentId);
  }

  private async releaseOrphanSlot(appointmentId: string, slot: PendingSlot): Promise<void> {
    const { side } = this.options;
    const appointment = await side.handlers.appointment.read(appointmentStreamId(appointmentId));
    if (appointment.state.status === 'none') {
      await releaseAppointmentTime(side, { appointmentId, ...slot }, systemRequest(slot.cause, 'orphan'));
    }
    this.slots.delete(appointmentId);
  }

  /** A rule refusing the step means the world moved on (paid in time, cancelled): nothing left to do. */
  private async attempt(step: () => Promise<void>, what: string): Promise<boolean> {
    try {
      await step();
      return true;
    } catch (error) {
      if (error instanceof DomainError) return true;
      this.options.onError?.(error, what);
      return false;
    }
  }
}

function causeOf(event: RecordedEvent): Cause {
  const correlationId = event.metadata.correlationId;
  return { id: event.id, correlationId: typeof correlationId === 'string' ? correlationId : event.id };
}

/** When the event was appended, by the command side's clock (the one the sweep compares with). */
function occurredAt(event: RecordedEvent): number {
  const at = typeof event.metadata.occurredAt === 'string' ? Date.parse(event.metadata.occurredAt) : Number.NaN;
  return Number.isNaN(at) ? event.recordedAt.getTime() : at;
}

function systemRequest(cause: Cause, step: string): CommandOptions {
  return {
    commandId: `hold-expiry:${step}:${cause.id}`,
    context: {
      actor: { id: 'system:hold-expiry', roles: [] },
      requestId: `hold-expiry-${cause.id}`,
      correlationId: cause.correlationId,
      causationId: cause.id,
    },
  };
}
