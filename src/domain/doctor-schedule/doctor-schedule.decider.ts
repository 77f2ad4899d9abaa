import { addDays, type CalendarDate, type Instant } from '../shared/calendar-date.js';
import { isTooFarAhead, maxDaysAhead } from '../shared/booking-horizon.js';
import { assertNever, type Decider } from '../shared/decider.js';
import { DomainError, NotFoundError } from '../shared/domain-error.js';
import { isBefore, isProperSlot, minutesBetween, slotsOverlap, utcInstant, type TimeSlot } from '../shared/time-slot.js';
import type {
  BookSlot,
  CompleteSlotMove,
  DoctorScheduleCommand,
  DropSlotHold,
  HoldSlotForMove,
  ReleaseSlot,
  RestoreSlot,
  SetSchedule,
  WithdrawSchedule,
} from './doctor-schedule.commands.js';
import { ScheduleConflictError, ScheduleWithdrawnError } from './doctor-schedule.errors.js';
import { normaliseSpecialty } from './specialty.js';
import type {
  DoctorScheduleEvent,
  ScheduleSet,
  ScheduleWithdrawn,
  SlotBooked,
  SlotMoveCompleted,
  SlotMoveDropped,
  SlotMoveHeld,
  SlotReleased,
  SlotRestored,
} from './doctor-schedule.events.js';
import { maxSlotMinutes, normaliseSchedule, sameSchedule, scheduleProblem, slotEnd, slotProblem, type WeeklySchedule } from './weekly-schedule.js';

export const doctorScheduleStreamId = (doctorId: string) => `doctorSchedule-${doctorId}`;

/** An appointment holds `[start, end)`. */
export type Booking = { readonly appointmentId: string; readonly start: Instant; readonly end: Instant };

/**
 * `[start, end)` held for a move of the appointment under way, beside its slot: taken from everyone
 * else as a booking is (so it sits among them, where every overlap check looks), yet not the
 * appointment's slot until the move completes. An appointment has at most one. `heldAt` tells it
 * from an earlier hold of the same time for the same appointment, dropped since: a retry of a move
 * holds again what its first try gave back.
 */
export type MoveHold = Booking & { readonly heldForMove: true; readonly heldAt: Instant };

const isMoveHold = (held: Booking | MoveHold): held is MoveHold => 'heldForMove' in held;

/**
 * Booked slots and holds grouped by the UTC date of their start, days in ascending order; within
 * a day a start is held at most once, so a slot (or hold) is known by its start. Plain arrays keep `evolve` cheap
 * on a stream that grows for ever (an event copies the list of days and one day's few slots,
 * not every booking; days long past are dropped from the front, see `pruned`) and keep the
 * state plain JSON for audits. There is no appointment → start index: every event names the
 * start it affects, so `evolve` never searches, and `decide` scans the live slots once per
 * command instead of every event paying to copy an index.
 */
export type BookedDay = { readonly day: CalendarDate; readonly slots: readonly (Booking | MoveHold)[] };
export type BookedSlots = readonly BookedDay[];

type PublishedFields = {
  readonly doctorId: string;
  readonly schedule: WeeklySchedule;
  readonly specialty: string | null;
  readonly booked: BookedSlots;
};

/**
 * `withdrawn` keeps the schedule last in force and what is booked on it: nothing new is booked,
 * but the appointments it holds are still cancelled (their slots released) or moved back.
 * `unset` with `withdrawn` is a doctor erased before publishing any schedule: none ever will be.
 * It stays `unset` rather than a status of its own because it has no hours and no bookings, and
 * everything past `unset` (a booking's slot length, its slot) reads those.
 */
export type DoctorScheduleState =
  | { readonly status: 'unset'; readonly withdrawn: boolean }
  | ({ readonly status: 'active' } & PublishedFields)
  | ({ readonly status: 'withdrawn' } & PublishedFields);

export const initialState: DoctorScheduleState = { status: 'unset', withdrawn: false };

type ActiveSchedule = Extract<DoctorScheduleState, { status: 'active' }>;
type PublishedState = Exclude<DoctorScheduleState, { status: 'unset' }>;

const isWithdrawn = (state: DoctorScheduleState): boolean => state.status === 'withdrawn' || (state.status === 'unset' && state.withdrawn);

function setSchedule({ data }: SetSchedule, state: DoctorScheduleState): DoctorScheduleEvent[] {
  const { doctorId, acknowledgedAffected, now, specialty: proposedSpecialty, ...proposed } = data;
  // Not left to the application's check that the doctor is registered: a publication racing the
  // erasure, or the erased doctor's own token while it lasts, must not make them bookable again.
  if (isWithdrawn(state)) throw new ScheduleWithdrawnError(doctorId);
  const problem = scheduleProblem(proposed);
  if (problem) throw new DomainError(problem.code, problem.message);
  const schedule = normaliseSchedule(proposed);
  const specialty = normaliseSpecialty(proposedSpecialty);
  if (state.status === 'active') {
    if (state.doctorId !== doctorId) throw new DomainError('doctor-mismatch', `this schedule belongs to doctor ${state.doctorId}`);
    if (sameSchedule(state.schedule, schedule) && state.specialty === specialty) return [];
  }
  const affected = state.status === 'active' ? affectedBy(schedule, state.booked, now) : [];
  if (affected.some((id) => !acknowledgedAffected.includes(id))) throw new ScheduleConflictError(affected);
  const event: ScheduleSet = {
    type: 'ScheduleSet',
    data: { doctorId, ...schedule, specialty, affectedAppointmentIds: affected, setAt: utcInstant(now) },
  };
  return [event];
}

function bookSlot({ data }: BookSlot, state: DoctorScheduleState): DoctorScheduleEvent[] {
  const published = requirePublished(state);
  const start = utcInstant(data.start);
  const held = bookingOf(published.booked, data.appointmentId);
  // Held already: a retry, which is done, even of a booking made before a withdrawal.
  if (held?.start === start) return [];
  const active = requireActive(published);
  if (held) {
    throw new DomainError('already-booked', `appointment ${data.appointmentId} already holds the slot at ${held.start}; move it instead`);
  }
  const end = assertBookable(active, start, data.now);
  const event: SlotBooked = {
    type: 'SlotBooked',
    data: { doctorId: active.doctorId, appointmentId: data.appointmentId, patientId: data.patientId, start, end, bookedAt: utcInstant(data.now) },
  };
  return [event];
}

/** The hold of a move under way goes too: the appointment it was for is given up. */
function releaseSlot({ data }: ReleaseSlot, state: DoctorScheduleState): DoctorScheduleEvent[] {
  if (state.status === 'unset') return [];
  const held = bookingOf(state.booked, data.appointmentId);
  const released: SlotReleased[] = held
    ? [{ type: 'SlotReleased', data: { doctorId: state.doctorId, appointmentId: data.appointmentId, start: held.start, end: held.end } }]
    : [];
  const hold = moveHoldOf(state.booked, data.appointmentId);
  return [...released, ...(hold ? [holdDropped(state.doctorId, hold)] : [])];
}

/**
 * The new slot is held, the old one kept, until the appointment has moved (`CompleteSlotMove`) or
 * will not (`DropSlotHold`). A retry finds its hold there, or the move completed.
 */
function holdSlotForMove({ data }: HoldSlotForMove, state: DoctorScheduleState): DoctorScheduleEvent[] {
  const published = requirePublished(state);
  const start = utcInstant(data.newStart);
  const held = bookingOf(published.booked, data.appointmentId);
  if (!held) throw new NotFoundError(`A booked slot of appointment ${data.appointmentId}`);
  const hold = moveHoldOf(published.booked, data.appointmentId);
  if (hold?.start === start || (!hold && held.start === start)) return [];
  const active = requireActive(published);
  // Two reschedules of one appointment, each moving "its" slot, would leave the slot where the
  // first put it and the appointment where the second did: only the slot the mover saw moves,
  // and only once the move under way (if any) has completed or been dropped.
  if (hold || held.start !== utcInstant(data.from)) {
    throw new DomainError('slot-moved-meanwhile', `the slot of appointment ${data.appointmentId} is no longer at ${data.from}: another change of it is under way`);
  }
  const end = assertBookable(active, start, data.now, data.appointmentId);
  const event: SlotMoveHeld = {
    type: 'SlotMoveHeld',
    data: { doctorId: active.doctorId, appointmentId: data.appointmentId, previousStart: held.start, previousEnd: held.end, start, end, heldAt: utcInstant(data.now) },
  };
  return [event];
}

/**
 * Also on a withdrawn schedule: the appointment has moved, and its slot follows it onto time held
 * for it before the withdrawal.
 */
function completeSlotMove({ data }: CompleteSlotMove, state: DoctorScheduleState): DoctorScheduleEvent[] {
  const published = requirePublished(state);
  const to = utcInstant(data.to);
  const held = bookingOf(published.booked, data.appointmentId);
  const hold = moveHoldOf(published.booked, data.appointmentId);
  if (held?.start === to && !hold) return [];
  // Refused, not ignored, for a hold other than the one named: appending nothing would tell the
  // caller the appointment's slot is at `to`, while it is not, and the newer hold may yet be dropped.
  if (hold?.start !== to || !isHeldAt(hold, data.heldAt)) {
    throw new NotFoundError(`A slot held for appointment ${data.appointmentId} at ${data.to}${data.heldAt ? ` since ${data.heldAt}` : ''}`);
  }
  if (!held) throw new NotFoundError(`A booked slot of appointment ${data.appointmentId}`);
  const event: SlotMoveCompleted = {
    type: 'SlotMoveCompleted',
    data: {
      doctorId: published.doctorId,
      appointmentId: data.appointmentId,
      previousStart: held.start,
      previousEnd: held.end,
      start: hold.start,
      end: hold.end,
      completedAt: utcInstant(data.now),
    },
  };
  return [event];
}

/**
 * Never refused: what it frees is the appointment's own, and nobody else can be in its way. A hold
 * other than the one named is left as a hold already gone is: what the caller wanted gone is.
 */
function dropSlotHold({ data }: DropSlotHold, state: DoctorScheduleState): DoctorScheduleEvent[] {
  if (state.status === 'unset') return [];
  const hold = moveHoldOf(state.booked, data.appointmentId);
  if (hold?.start !== utcInstant(data.to) || !isHeldAt(hold, data.heldAt)) return [];
  return [holdDropped(state.doctorId, hold)];
}

/** The hold made at `heldAt`, or any when none is named. */
const isHeldAt = (hold: MoveHold, heldAt: Instant | undefined): boolean => heldAt === undefined || hold.heldAt === utcInstant(heldAt);

function holdDropped(doctorId: string, { appointmentId, start, end }: MoveHold): SlotMoveDropped {
  return { type: 'SlotMoveDropped', data: { doctorId, appointmentId, start, end } };
}

/**
 * Neither the grid nor the clock is asked: the slot goes back to where its appointment is, which
 * was a slot when it was booked. Only another appointment in that time refuses it.
 */
function restoreSlot({ data }: RestoreSlot, state: DoctorScheduleState): DoctorScheduleEvent[] {
  // A withdrawn schedule too: a move its appointment did not follow goes back where it is.
  const published = requirePublished(state);
  const slot = { start: utcInstant(data.start), end: utcInstant(data.end) };
  // No longer than a slot can be: overlaps are looked for only a day around a slot (`bookedNear`).
  if (!isProperSlot(slot) || minutesBetween(slot.start, slot.end) > maxSlotMinutes) {
    throw new DomainError('invalid-time-range', `${data.start} to ${data.end} is not the time of a slot`);
  }
  const held = bookingOf(published.booked, data.appointmentId);
  if (!held) throw new NotFoundError(`A booked slot of appointment ${data.appointmentId}`);
  if (held.start === slot.start && held.end === slot.end) return [];
  if (held.start !== utcInstant(data.from)) {
    throw new DomainError('slot-moved-meanwhile', `the slot of appointment ${data.appointmentId} is no longer at ${data.from}: another change of it is under way`);
  }
  assertFree(published.booked, slot, data.appointmentId);
  const event: SlotRestored = {
    type: 'SlotRestored',
    data: { doctorId: published.doctorId, appointmentId: data.appointmentId, previousStart: held.start, previousEnd: held.end, ...slot, restoredAt: utcInstant(data.now) },
  };
  return [event];
}

/**
 * Withdrawn already: an erasure retried finds it done. Without a schedule too, something is
 * decided: a first publication under way when the doctor is erased then finds the stream moved on
 * and, deciding again, refused; with nothing appended it would have made the erased doctor bookable.
 */
function withdrawSchedule({ data }: WithdrawSchedule, state: DoctorScheduleState): DoctorScheduleEvent[] {
  if (isWithdrawn(state)) return [];
  const doctorId = state.status === 'unset' ? data.doctorId : state.doctorId;
  const event: ScheduleWithdrawn = { type: 'ScheduleWithdrawn', data: { doctorId, withdrawnAt: utcInstant(data.now) } };
  return [event];
}

export function decide(command: DoctorScheduleCommand, state: DoctorScheduleState): DoctorScheduleEvent[] {
  switch (command.type) {
    case 'SetSchedule':
      return setSchedule(command, state);
    case 'BookSlot':
      return bookSlot(command, state);
    case 'ReleaseSlot':
      return releaseSlot(command, state);
    case 'HoldSlotForMove':
      return holdSlotForMove(command, state);
    case 'CompleteSlotMove':
      return completeSlotMove(command, state);
    case 'DropSlotHold':
      return dropSlotHold(command, state);
    case 'RestoreSlot':
      return restoreSlot(command, state);
    case 'WithdrawSchedule':
      return withdrawSchedule(command, state);
    default:
      return assertNever(command);
  }
}

function requirePublished(state: DoctorScheduleState): PublishedState {
  if (state.status === 'unset') throw new NotFoundError('A schedule for this doctor');
  return state;
}

/** A schedule that takes bookings and moves onto it. */
function requireActive(state: PublishedState): ActiveSchedule {
  if (state.status === 'withdrawn') throw new ScheduleWithdrawnError(state.doctorId);
  return state;
}

/** Guards shared by booking and moving; answers the end of the slot. */
function assertBookable(state: ActiveSchedule, start: Instant, now: Instant, movingAppointmentId?: string): Instant {
  if (!isBefore(now, start)) throw new DomainError('slot-in-past', `the slot at ${start} is not in the future`);
  if (isTooFarAhead(start, now)) throw new DomainError('slot-too-far-ahead', `the slot at ${start} is more than ${maxDaysAhead} days ahead`);
  const problem = slotProblem(state.schedule, start);
  if (problem) throw new DomainError(problem.code, problem.message);
  const slot = { start, end: slotEnd(state.schedule, start) };
  assertFree(state.booked, slot, movingAppointmentId);
  return slot.end;
}

/**
 * Nothing but the slot of `appointmentId` (the one moving into `slot`, if any) holds any of its
 * time; a hold for that appointment's move counts as taken, so a slot never lands on its hold.
 */
function assertFree(booked: BookedSlots, slot: TimeSlot, appointmentId?: string): void {
  const mine = (held: Booking | MoveHold) => held.appointmentId === appointmentId && !isMoveHold(held);
  const taken = bookedNear(booked, slot).find((held) => !mine(held) && slotsOverlap(held, slot));
  if (taken) throw new DomainError('slot-taken', `the slot at ${slot.start} is already booked`);
}

/**
 * Appointments booked into slots (or holding time for a move) that have not ended and that the
 * new schedule would not offer (not on its grid, outside its hours, on a day off, or of another
 * length), sorted, each once.
 */
function affectedBy(schedule: WeeklySchedule, booked: BookedSlots, now: Instant): string[] {
  const affected = bookings(booked)
    .filter((held) => isBefore(now, held.end))
    .filter((held) => slotProblem(schedule, held.start) !== undefined || slotEnd(schedule, held.start) !== held.end)
    .map((held) => held.appointmentId);
  return [...new Set(affected)].sort();
}

/** Every slot and every hold for a move. */
export function bookings(booked: BookedSlots): (Booking | MoveHold)[] {
  return booked.flatMap((day) => day.slots);
}

/** Where an appointment's slot is on this schedule, if it holds one; never a hold for its move. */
export function slotOf(state: DoctorScheduleState, appointmentId: string): Booking | undefined {
  return state.status === 'unset' ? undefined : bookingOf(state.booked, appointmentId);
}

/** The time held for a move of the appointment under way, if there is one. */
export function slotHoldOf(state: DoctorScheduleState, appointmentId: string): MoveHold | undefined {
  return state.status === 'unset' ? undefined : moveHoldOf(state.booked, appointmentId);
}

function bookingOf(booked: BookedSlots, appointmentId: string): Booking | undefined {
  return findHeld(booked, (held) => held.appointmentId === appointmentId && !isMoveHold(held));
}

function moveHoldOf(booked: BookedSlots, appointmentId: string): MoveHold | undefined {
  const hold = findHeld(booked, (held) => held.appointmentId === appointmentId && isMoveHold(held));
  return hold && isMoveHold(hold) ? hold : undefined;
}

function findHeld(booked: BookedSlots, matches: (held: Booking | MoveHold) => boolean): Booking | MoveHold | undefined {
  for (const { slots } of booked) {
    const held = slots.find(matches);
    if (held) return held;
  }
  return undefined;
}

/**
 * The booked slots that may overlap `slot`: those starting from the day before its start (no
 * slot lasts a day, see `maxSlotMinutes`) to the day it ends. A doctor booked months ahead has
 * thousands of slots; each command checks a few dozen.
 */
function bookedNear(booked: BookedSlots, slot: { start: Instant; end: Instant }): (Booking | MoveHold)[] {
  const from = addDays(dayOf(slot.start), -1);
  const to = dayOf(slot.end);
  const near: (Booking | MoveHold)[] = [];
  for (const { day, slots } of booked) {
    if (day > to) break;
    if (day >= from) near.push(...slots);
  }
  return near;
}

export function evolve(state: DoctorScheduleState, event: DoctorScheduleEvent): DoctorScheduleState {
  switch (event.type) {
    case 'ScheduleSet': {
      const { doctorId, specialty, affectedAppointmentIds: _affected, setAt, ...schedule } = event.data;
      const booked = state.status === 'unset' ? [] : pruned(state.booked, setAt);
      return { status: 'active', doctorId, schedule, specialty, booked };
    }
    case 'SlotBooked': {
      if (state.status === 'unset') return state;
      const { appointmentId, start, end, bookedAt } = event.data;
      return { ...state, booked: withSlot(pruned(state.booked, bookedAt), { appointmentId, start, end }) };
    }
    case 'SlotReleased':
      if (state.status === 'unset') return state;
      return { ...state, booked: withoutSlot(state.booked, event.data.start) };
    case 'SlotMoved':
      if (state.status === 'unset') return state;
      return { ...state, booked: withSlotMoved(state.booked, event.data, event.data.movedAt) };
    case 'SlotRestored':
      if (state.status === 'unset') return state;
      return { ...state, booked: withSlotMoved(state.booked, event.data, event.data.restoredAt) };
    case 'SlotMoveHeld': {
      if (state.status === 'unset') return state;
      const { appointmentId, start, end, heldAt } = event.data;
      return { ...state, booked: withSlot(pruned(state.booked, heldAt), { appointmentId, start, end, heldForMove: true, heldAt: utcInstant(heldAt) }) };
    }
    case 'SlotMoveCompleted': {
      if (state.status === 'unset') return state;
      // The hold, known by its start, gives way to the slot at the same time.
      return { ...state, booked: withSlotMoved(withoutSlot(state.booked, event.data.start), event.data, event.data.completedAt) };
    }
    case 'SlotMoveDropped':
      if (state.status === 'unset') return state;
      return { ...state, booked: withoutSlot(state.booked, event.data.start) };
    case 'ScheduleWithdrawn':
      if (state.status === 'unset') return { status: 'unset', withdrawn: true };
      return { ...state, status: 'withdrawn' };
    default:
      return assertNever(event);
  }
}

const dayOf = (instant: Instant): CalendarDate => instant.slice(0, 10);

/**
 * Forgets, lazily (whenever an event carrying a time is folded), days whose slots all ended
 * well before `at`. A slot lasts at most two hours, so every slot of a day is over by 02:00 UTC
 * the next day; we keep two more days so that a clock running somewhat ahead cannot drop a live
 * booking. Forgotten slots can no longer collide with a booking, which must be in the future (a
 * restore may reach back there, but only to a time that is over as well); releasing one
 * afterwards changes nothing and moving or restoring one answers not-found.
 */
function pruned(booked: BookedSlots, at: Instant): BookedSlots {
  const keepFrom = addDays(dayOf(utcInstant(at)), -3);
  const firstKept = booked.findIndex(({ day }) => day >= keepFrom);
  return firstKept === 0 ? booked : firstKept < 0 ? [] : booked.slice(firstKept);
}

/** The appointment's slot taken from `previousStart` to `[start, end)`, as of `at`. */
function withSlotMoved(
  booked: BookedSlots,
  { appointmentId, previousStart, start, end }: Booking & { readonly previousStart: Instant },
  at: Instant,
): BookedSlots {
  return withSlot(withoutSlot(pruned(booked, at), previousStart), { appointmentId, start, end });
}

function withSlot(booked: BookedSlots, booking: Booking | MoveHold): BookedSlots {
  const day = dayOf(booking.start);
  const at = booked.findIndex((bookedDay) => bookedDay.day >= day);
  const existing = booked[at];
  if (existing?.day === day) return booked.with(at, { day, slots: [...existing.slots, booking] });
  const newDay = { day, slots: [booking] };
  return at < 0 ? [...booked, newDay] : [...booked.slice(0, at), newDay, ...booked.slice(at)];
}

function withoutSlot(booked: BookedSlots, start: Instant): BookedSlots {
  const at = booked.findIndex(({ day }) => day === dayOf(start));
  const existing = booked[at];
  if (!existing) return booked;
  const slots = existing.slots.filter((slot) => slot.start !== start);
  return slots.length > 0 ? booked.with(at, { day: existing.day, slots }) : booked.toSpliced(at, 1);
}

export const doctorScheduleDecider: Decider<DoctorScheduleCommand, DoctorScheduleEvent, DoctorScheduleState> = {
  initialState,
  decide,
  evolve,
};
