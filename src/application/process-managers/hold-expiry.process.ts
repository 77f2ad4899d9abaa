import { appointmentStreamId } from '../../domain/appointment/appointment.decider.js';
import { bookingStreamId } from '../../domain/booking/booking.decider.js';
import { listingCalendarStreamId } from '../../domain/listing-calendar/listing-calendar.decider.js';
import { DomainError } from '../../domain/shared/domain-error.js';
import { aggregates } from '../aggregates/aggregates.js';
import { releaseAppointmentTime } from '../appointments/appointment.use-cases.js';
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
type PendingHold = { listingId: string; holdExpiresAt: number; cause: Cause };
type PendingSlot = { doctorId: string; patientId: string; bookedAt: number; cause: Cause };

/** The event types this process follows; everything else is filtered out by the store. */
export const holdExpiryEventTypes = ['DatesHeld', 'DatesBooked', 'DatesReleased', 'SlotBooked', 'SlotReleased', 'AppointmentScheduled'];

export type HoldExpiryOptions = {
  readonly eventStore: EventStore;
  readonly side: CommandSide;
  /** How long a slot may be held without its appointment before it counts as left behind by a crash. */
  readonly orphanSlotGraceMs: number;
  readonly onError?: (error: unknown, what: string) => void;
};

/**
 * Finishes what a request cannot: releases dates whose hold ran out unpaid (and expires the
 * booking), and frees slots and patient time held for an appointment that was never created
 * because the process died between the appends. It follows the log from the start, so after a
 * crash it knows again every hold still pending; each command it sends has an id derived from
 * the event that caused it, so two instances, or a restart, never append anything twice.
 */
export class HoldExpiryProcess {
  private readonly holds = new Map<string, PendingHold>();
  private readonly slots = new Map<string, PendingSlot>();

  constructor(private readonly options: HoldExpiryOptions) {}

  /** Keeps the set of pending holds and slots in step with one event. */
  observe(event: RecordedEvent): void {
    switch (event.type) {
      case 'DatesHeld': {
        const held = aggregates.listingCalendar.codec.decode(event);
        if (held.type !== 'DatesHeld') return;
        const { bookingId, listingId, holdExpiresAt } = held.data;
        this.holds.set(bookingId, { listingId, holdExpiresAt: Date.parse(holdExpiresAt), cause: causeOf(event) });
        return;
      }
      case 'DatesBooked':
      case 'DatesReleased': {
        const ended = aggregates.listingCalendar.codec.decode(event);
        if (ended.type !== 'DatesBooked' && ended.type !== 'DatesReleased') return;
        this.holds.delete(ended.data.bookingId);
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
        if (typeof appointmentId === 'string') this.slots.delete(appointmentId);
        return;
      }
    }
  }

  /** Acts on every hold and slot that is due; returns how many it settled. */
  async sweep(): Promise<number> {
    const now = this.options.side.clock.now().getTime();
    let settled = 0;
    for (const [bookingId, hold] of this.holds) {
      if (hold.holdExpiresAt > now) continue;
      if (await this.attempt(() => this.expireHold(bookingId, hold), `expire hold of booking ${bookingId}`)) settled++;
    }
    for (const [appointmentId, slot] of this.slots) {
      if (slot.bookedAt + this.options.orphanSlotGraceMs > now) continue;
      if (await this.attempt(() => this.releaseOrphanSlot(appointmentId, slot), `release slot of appointment ${appointmentId}`)) settled++;
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

  get pending(): { holds: number; slots: number } {
    return { holds: this.holds.size, slots: this.slots.size };
  }

  private async expireHold(bookingId: string, hold: PendingHold): Promise<void> {
    const { side } = this.options;
    const request = systemRequest(hold.cause, 'expire');
    const booking = await side.handlers.booking.read(bookingStreamId(bookingId));
    if (booking.state.status === 'requested') {
      const now = side.clock.now().toISOString();
      await side.handlers.booking.handle(bookingStreamId(bookingId), { type: 'ExpireBooking', data: { bookingId, now } }, request);
    }
    // No booking at all: the request died after holding the dates. Either way the dates go back.
    await side.handlers.listingCalendar.handle(
      listingCalendarStreamId(hold.listingId),
      { type: 'ReleaseDates', data: { listingId: hold.listingId, bookingId, reason: 'expired', now: side.clock.now().toISOString() } },
      request,
    );
    this.holds.delete(bookingId);
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
