import { appointmentDecider, appointmentStreamId, isMade, type AppointmentState } from '../../domain/appointment/appointment.decider.js';
import type { AppointmentCommand, RescheduleAppointment, ScheduleAppointment } from '../../domain/appointment/appointment.commands.js';
import { doctorScheduleStreamId, slotHoldOf, slotOf } from '../../domain/doctor-schedule/doctor-schedule.decider.js';
import { patientAgendaDecider, patientAgendaStreamId, reservationOf, type PatientAgendaState } from '../../domain/patient-agenda/patient-agenda.decider.js';
import { hasRole, type Actor } from '../../domain/shared/actor.js';
import type { TimeSlot } from '../../domain/shared/time-slot.js';
import { DomainError, NotFoundError } from '../../domain/shared/domain-error.js';
import { deterministicUuid } from '../ids.js';
import type { CommandSide } from '../command-handlers.js';
import { compensating, givenUpOnFailure, outcome, refusalPosition, refusedAfter, takeStep, unpinned, type CommandOutcome } from '../command-handling/command-outcome.js';
import { assertExpectedVersion, VersionMismatchError } from '../command-handling/errors.js';
import { backoff, type CommandOptions, type CommandResult } from '../command-handling/handle-command.js';
import type { Position } from '../ports/position.js';

export type BookAppointmentInput = { doctorId: string; start: string; reason: string };

/**
 * The doctor's slot, then the patient's time, then the appointment. Each contended resource is
 * taken by the aggregate that owns it, with an expected revision, so concurrent bookings of one
 * slot, or of one patient's time, cannot both win. A patient busy then is refused before the
 * slot is taken; one who became busy since is refused when the time is reserved, and the slot
 * given back at once; a crash between steps leaves holds that the orphan sweep releases, and a
 * retry after that takes them again (`takeStep`), unless the sweep gave the id up meanwhile.
 */
export async function bookAppointment(side: CommandSide, input: BookAppointmentInput, request: CommandOptions): Promise<CommandOutcome> {
  const appointmentId = deterministicUuid('appointment', request.commandId);
  const { actor } = request.context;
  const appointment = appointmentStreamId(appointmentId);
  // Only a retry can find the appointment's stream begun; a command id made for this request
  // alone spares the read.
  const existing = request.freshCommandId === true ? appointmentDecider.initialState : (await side.handlers.appointment.read(appointment)).state;
  // A retry of an appointment that was made (its answer lost, or never stored) is answered as it
  // was, before anything is checked again: the clock and the schedule have moved on since, and
  // could refuse an appointment that holds its slot (retried once it has begun).
  const original = isMade(existing) ? await side.handlers.appointment.applied(appointment, request.commandId) : undefined;
  if (original) return outcome(appointmentId, original);
  const now = side.clock.now().toISOString();
  const start = new Date(input.start).toISOString();
  const end = await slotEnd(side, input.doctorId, start);
  const command: ScheduleAppointment = {
    type: 'ScheduleAppointment',
    data: { appointmentId, patientId: actor.id, doctorId: input.doctorId, start, end, reason: input.reason, actor, now },
  };
  // The appointment's own rules (who, when) are checked before anything is held for it.
  appointmentDecider.decide(command, appointmentDecider.initialState);
  // So is an id the sweep gave up (this decision refuses it): a step the retry had not taken yet
  // would take its resource for good, since the sweep no longer looks after that id.
  if (existing.status === 'abandoned') appointmentDecider.decide(command, existing);
  await assertPatientFree(side, command, request);
  // A slot (and time) left by a failed unkeyed request would keep its client's retry (a new
  // appointment) from them until the orphan sweep gave them back.
  const ids = { appointmentId, doctorId: input.doctorId, patientId: actor.id };
  const result = await givenUpOnFailure(
    request,
    () => takeSteps(side, command, request),
    () => abandonAppointment(side, ids, request),
  );
  return outcome(appointmentId, result);
}

/**
 * The patient's time, checked by their agenda's own rule before the doctor's slot is taken: a
 * refusal here appends nothing, and nobody sees the slot taken meanwhile. The agenda's decision
 * when the time is reserved stays the guarantee: a booking of the patient's that lands after this
 * check is refused there, and the slot given back (`takeSteps`). So the agenda as this process
 * last left it will do to let a booking on, sparing a read; a refusal is decided on the agenda as
 * read, for a time freed elsewhere since must not be refused. A retry whose first try reserved
 * the time has nothing to check here; one whose first try took the slot goes on as that try
 * would have, so that the refusal gives the slot back rather than leave it to the sweep.
 */
async function assertPatientFree(side: CommandSide, { data }: ScheduleAppointment, request: CommandOptions): Promise<void> {
  const { patientId, appointmentId, doctorId, start, end } = data;
  const agenda = patientAgendaStreamId(patientId);
  const reserve = (state: PatientAgendaState) => {
    if (reservationOf(state, appointmentId) === undefined) patientAgendaDecider.decide({ type: 'ReserveTime', data: { patientId, appointmentId, start, end } }, state);
  };
  const cached = side.handlers.patientAgenda.cached(agenda);
  if (cached && !refuses(() => reserve(cached.state))) return;
  try {
    reserve((await side.handlers.patientAgenda.read(agenda)).state);
  } catch (error) {
    const mayHoldSlot = request.freshCommandId !== true && error instanceof DomainError;
    if (mayHoldSlot && slotOf((await side.handlers.doctorSchedule.read(doctorScheduleStreamId(doctorId))).state, appointmentId) !== undefined) return;
    throw error;
  }
}

/** Whether `decision` refuses (a domain error); any other error is thrown. */
function refuses(decision: () => void): boolean {
  try {
    decision();
    return false;
  } catch (error) {
    unlessRefused(error);
    return true;
  }
}

/** Gives the appointment id up unless the appointment was made, and then its slot and time back: the releases, if they went. */
async function abandonAppointment(side: CommandSide, ids: { appointmentId: string; doctorId: string; patientId: string }, request: CommandOptions) {
  const { appointmentId } = ids;
  const now = side.clock.now().toISOString();
  const claim = await side.handlers.appointment.handle(appointmentStreamId(appointmentId), { type: 'AbandonAppointment', data: { appointmentId, now } }, compensating(request, 'abandon'));
  if (claim.state.status !== 'abandoned') return [];
  return releaseAppointmentTime(side, ids, compensating(request, 'release'));
}

/** The slot, then the patient's time (giving the slot back if refused), then the appointment. */
async function takeSteps(side: CommandSide, command: ScheduleAppointment, request: CommandOptions) {
  const { appointmentId, patientId, doctorId, start, end, now } = command.data;
  const schedule = doctorScheduleStreamId(doctorId);
  // A retry that finds a step's resource given back takes it again only for an appointment still to be made.
  const notMadeYet = async () => (await side.handlers.appointment.read(appointmentStreamId(appointmentId))).state.status === 'none';
  const slot = await takeStep(
    unpinned(request),
    (options) => side.handlers.doctorSchedule.handle(schedule, { type: 'BookSlot', data: { appointmentId, patientId, start, now } }, options),
    (state) => slotOf(state, appointmentId) !== undefined,
    notMadeYet,
  );
  // The slot as the schedule booked it: its length may have changed since `slotEnd` read it.
  const booked = { start, end: slotOf(slot.state, appointmentId)?.end ?? end };
  try {
    await takeStep(
      unpinned(request),
      (options) => side.handlers.patientAgenda.handle(patientAgendaStreamId(patientId), { type: 'ReserveTime', data: { patientId, appointmentId, ...booked } }, options),
      (state) => reservationOf(state, appointmentId) !== undefined,
      notMadeYet,
    );
  } catch (error) {
    if (error instanceof DomainError) {
      const released = await side.handlers.doctorSchedule.handle(schedule, { type: 'ReleaseSlot', data: { appointmentId } }, compensating(request, `slot@${slot.version}`));
      refusedAfter(error, [slot, released]);
    }
    throw error;
  }
  return makeAppointment(side, { ...command, data: { ...command.data, ...booked } }, request);
}

/**
 * The booking's last step. When the sweep gave the id up while this request held the slot and
 * the time for it, the sweep will not give them back, so they go back here: safe by appointment
 * id, as an id given up stays given up. Any other refusal may be about an appointment that holds them.
 */
async function makeAppointment(side: CommandSide, command: ScheduleAppointment, request: CommandOptions) {
  const { appointmentId, doctorId, patientId } = command.data;
  try {
    return await side.handlers.appointment.handle(appointmentStreamId(appointmentId), command, unpinned(request));
  } catch (error) {
    if (error instanceof DomainError && error.code === 'appointment-abandoned') {
      refusedAfter(error, await releaseAppointmentTime(side, { appointmentId, doctorId, patientId }, compensating(request, 'abandoned')));
    }
    throw error;
  }
}

/**
 * Tries of a reschedule that finds another change of the same appointment moving its slot. Each
 * waits for one other change to land, and under load several may be queued on one appointment
 * (eight at once ran out of 12 tries, about 0.3 s of backoff, on a busy machine): 30 give about
 * 1.3 s, a slow answer rather than a 409 that the caller would only retry.
 */
const rescheduleAttempts = 30;

/**
 * The patient's time moves, then the new slot is held beside the old one, then the appointment
 * moves, and only then the hold becomes its slot and the old slot is freed. Only the time and the
 * slot where this reschedule saw the appointment move, so of two concurrent reschedules the second
 * waits for the first to land and then moves on from there; otherwise the slot (or time) could end
 * where one put it and the appointment where the other did.
 */
export async function rescheduleAppointment(
  side: CommandSide,
  appointmentId: string,
  input: { start: string },
  request: CommandOptions,
): Promise<CommandOutcome> {
  // What earlier tries appended and undid: the refusal that ends the loop names it, though a
  // last try refused before it appended anything (the appointment cancelled meanwhile) has none.
  const appendedByTries: Array<{ readonly position: Position }> = [];
  for (let attempt = 1; ; attempt++) {
    try {
      return await rescheduleOnce(side, appointmentId, input, request);
    } catch (error) {
      const movedMeanwhile = error instanceof DomainError && (error.code === 'slot-moved-meanwhile' || error.code === 'time-moved-meanwhile');
      // The appointment changed after this try read it (another change of it, or the hold-expiry
      // process giving this request up as dead): a client that sent no If-Match asked for the new
      // time whatever the version, so the next try starts from the appointment as it is now.
      const changedMeanwhile = error instanceof VersionMismatchError && request.expectedVersion === undefined;
      const position = refusalPosition(error);
      if (position) appendedByTries.push({ position });
      if (!(movedMeanwhile || changedMeanwhile) || attempt >= rescheduleAttempts) {
        refusedAfter(error, appendedByTries);
        throw error;
      }
      await backoff(attempt);
    }
  }
}

/**
 * One try. A refusal on the way (the patient's time, a pinned version gone stale, the
 * appointment cancelled meanwhile) drops the hold and moves the time back (`undoMoves`); other
 * failures leave them for a retry of the same request, which finds the steps already taken, or
 * for the hold-expiry process.
 */
async function rescheduleOnce(side: CommandSide, appointmentId: string, input: { start: string }, request: CommandOptions): Promise<CommandOutcome> {
  const { actor } = request.context;
  const { state: current, version } = await visibleAppointment(side, appointmentId, actor);
  const appointment = appointmentStreamId(appointmentId);
  // The appointment's own append comes last: a retry of a move that went through is answered as it
  // was, once the slot and the time are where it put the appointment. The try before may have died
  // before they followed, and both the old slot and the new one stay taken until they do. A change
  // of the appointment landed since is that change's to follow.
  const original = await side.handlers.appointment.applied(appointment, request.commandId);
  if (original) return answeredAgain(side, appointmentId, current, { original, follow: version === original.version }, request);
  // Checked before anything moves.
  assertExpectedVersion(appointment, request.expectedVersion, version);
  const now = side.clock.now().toISOString();
  const newStart = new Date(input.start).toISOString();
  const newEnd = await slotEnd(side, current.doctorId, newStart);
  const command: RescheduleAppointment = { type: 'RescheduleAppointment', data: { appointmentId, newStart, newEnd, actor, now } };
  if (appointmentDecider.decide(command, current).length === 0) {
    return outcome(appointmentId, await side.handlers.appointment.handle(appointment, command, request));
  }
  // The steps' ids are this command's at this version of the appointment: a retry finds the
  // steps it took; one after the appointment changed otherwise takes steps of its own.
  const atVersion = { ...request, commandId: `${request.commandId}@${version}` };
  const schedule = doctorScheduleStreamId(current.doctorId);
  const agenda = patientAgendaStreamId(current.patientId);
  const { patientId } = current;
  // What this request moved, undone in reverse on a refusal; the refusal names where that left the log.
  const appended: Array<{ readonly position: Position } | undefined> = [];
  const undo: Array<(to: TimeSlot) => Promise<{ readonly position: Position }>> = [];
  /** Moves the patient's time (from where this request saw or put it), to be moved back on a refusal. */
  const moveTime = async (from: string, to: TimeSlot, step: CommandOptions, holds: (held: TimeSlot | undefined) => boolean) => {
    const time = await takeStep(
      step,
      (options) => side.handlers.patientAgenda.handle(agenda, { type: 'MoveTime', data: { patientId, appointmentId, from, newStart: to.start, newEnd: to.end } }, options),
      (state) => holds(reservationOf(state, appointmentId)),
    );
    appended.push(time);
    if (tookStep(time)) {
      undo.unshift((back) =>
        side.handlers.patientAgenda.handle(
          agenda,
          { type: 'MoveTime', data: { patientId, appointmentId, from: newStart, newStart: back.start, newEnd: back.end } },
          compensating(atVersion, `time@${time.version}`),
        ),
      );
    }
  };
  try {
    // The patient's time first: moving it frees the old time in the patient's own agenda, which
    // only the patient's own requests can take; the doctor's slot, freed first, could be booked by
    // anyone before a refusal moved it back, two appointments at one time then.
    await moveTime(current.start, { start: newStart, end: newEnd }, unpinned(atVersion), (held) => held?.start === newStart);
    // The old slot stays held until the appointment has moved: a refusal from here on gives
    // back only the new one, which nobody else could have taken meanwhile.
    const hold = await takeStep(
      unpinned(atVersion),
      (options) => side.handlers.doctorSchedule.handle(schedule, { type: 'HoldSlotForMove', data: { appointmentId, from: current.start, newStart, now } }, options),
      (state) => slotHoldOf(state, appointmentId)?.start === newStart || slotOf(state, appointmentId)?.start === newStart,
    );
    appended.push(hold);
    // Only from where this request put it: a hold anywhere else is another change's.
    if (tookStep(hold)) {
      undo.unshift(() =>
        side.handlers.doctorSchedule.handle(schedule, { type: 'DropSlotHold', data: { appointmentId, to: newStart } }, compensating(atVersion, `slot@${hold.version}`)),
      );
    }
    // The slot as the schedule held it: its length may have changed since `slotEnd` read it. The
    // time follows it: shorter, it cannot be refused; longer, it can, and then both go back.
    const movedEnd = (slotHoldOf(hold.state, appointmentId) ?? slotOf(hold.state, appointmentId))?.end ?? newEnd;
    if (movedEnd !== newEnd) {
      const lengthened = unpinned({ ...atVersion, commandId: `${atVersion.commandId}:length` });
      await moveTime(newStart, { start: newStart, end: movedEnd }, lengthened, (held) => held?.start === newStart && held.end === movedEnd);
    }
    // Under the request's own command id, which a retry looks for before anything moves; pinned
    // to the version this try read, so that nothing landed on the appointment since (another
    // change of it, or the hold-expiry process giving this request up and dropping its hold) is
    // moved past: then it is refused, and what it moved goes back.
    const rescheduled = await side.handlers.appointment.handle(appointment, { ...command, data: { ...command.data, newEnd: movedEnd } }, { ...request, expectedVersion: version });
    if (rescheduled.events.length === 0) return outcome(appointmentId, rescheduled);
    // The slot follows the appointment: the hold becomes its slot, the old one is freed. A retry
    // that found its time moved may land after the hold-expiry process, taking the request for
    // dead, moved it back: it follows the appointment now, not a grace period later with the new
    // time free for anyone meanwhile. (That move back looks again after its own step, so one of
    // the two sees the other.) The hold needs no second look: the process gives the request up on
    // the appointment before it drops the hold, which refuses an append that read the appointment
    // earlier, and it drops only the hold it saw (by `heldAt`), never one a later try held anew.
    const moved = { appointmentId, doctorId: current.doctorId, patientId: current.patientId, start: newStart, end: movedEnd };
    const followed = [await slotFollows(side, moved, compensating(atVersion, 'slot-follows'), now), await timeFollows(side, moved, compensating(atVersion, 'time-follows'))];
    return outcome(appointmentId, rescheduled, ...followed.flatMap((step) => (step ? [step] : [])));
  } catch (error) {
    if (isRefusal(error)) {
      appended.push(...(await undoMoves(side, current, newStart, undo, { request: atVersion, now })));
      refusedAfter(error, appended);
    }
    throw error;
  }
}

/**
 * A step this request took: appended now, or by an earlier try of it. One that found the slot (or
 * the time) already where it was going found another reschedule of the appointment to the same
 * time under way: the move is that one's, to undo if it fails, and this one's refusal leaves it.
 */
function tookStep(step: { readonly events: readonly unknown[]; readonly alreadyApplied: boolean }): boolean {
  return step.alreadyApplied || step.events.length > 0;
}

/**
 * Undoes a refused reschedule's moves, back to where the appointment is by then, not where this
 * request saw it: another reschedule to the same time that shared the moves may have recorded the
 * appointment there meanwhile (the 412 of one with a stale If-Match is mostly that one landing),
 * and then they are that one's, the appointment's slot and time, to be left where they are.
 *
 * Such a reschedule landing between the look and the undo is looked for again after it, when the
 * slot and time follow the appointment; that one looks at them after its own append too, so
 * whichever of the two comes second sees the other.
 */
async function undoMoves(
  side: CommandSide,
  seen: AppointmentTime,
  movedTo: string,
  undo: ReadonlyArray<(to: TimeSlot) => Promise<{ readonly position: Position }>>,
  { request, now }: { request: CommandOptions; now: string },
): Promise<Array<{ readonly position: Position } | undefined>> {
  if (undo.length === 0) return [];
  const where = await whereAppointmentIs(side, seen);
  if (where.start === movedTo) return [];
  const undone: Array<{ readonly position: Position } | undefined> = [];
  for (const step of undo) undone.push(await undoing(side, seen.appointmentId, () => step(where)));
  const after = await whereAppointmentIs(side, seen);
  if (after.start === where.start) return undone;
  const follows = `follows@${after.version}`;
  undone.push(await slotFollows(side, after, compensating(request, `slot-${follows}`), now), await timeFollows(side, after, compensating(request, `time-${follows}`)));
  return undone;
}

/**
 * A reschedule that went through, answered again: at the position it answered first, which is its
 * slot's and time's following of the appointment (the steps after its append), once they are
 * taken, under the first try's ids: that try read the appointment one event before its append
 * (`RescheduleAppointment` appends one). `follow` is false once another change has landed since.
 */
async function answeredAgain(
  side: CommandSide,
  appointmentId: string,
  current: AppointmentState,
  { original, follow }: { original: CommandResult<unknown, unknown>; follow: boolean },
  request: CommandOptions,
): Promise<CommandOutcome> {
  const firstTry = { ...request, commandId: `${request.commandId}@${original.version - 1}` };
  const followed = follow ? await followAppointment(side, current, firstTry) : [];
  const taken = isMade(current)
    ? await Promise.all([
        side.handlers.doctorSchedule.applied(doctorScheduleStreamId(current.doctorId), compensating(firstTry, 'slot-follows').commandId),
        side.handlers.patientAgenda.applied(patientAgendaStreamId(current.patientId), compensating(firstTry, 'time-follows').commandId),
      ])
    : [];
  return outcome(appointmentId, original, ...followed, ...taken);
}

/** The slot and the time moved to where an open appointment is, if either is elsewhere: the steps that moved them. */
async function followAppointment(side: CommandSide, state: AppointmentState, request: CommandOptions) {
  if (state.status !== 'scheduled' && state.status !== 'rescheduled') return [];
  const now = side.clock.now().toISOString();
  return [await slotFollows(side, state, compensating(request, 'slot-follows'), now), await timeFollows(side, state, compensating(request, 'time-follows'))];
}

/** The appointment's time now, and its version; as it was `seen` if it is gone (it never is, once made). */
async function whereAppointmentIs(side: CommandSide, seen: AppointmentTime): Promise<AppointmentTime & { version: number }> {
  const { appointmentId, doctorId, patientId } = seen;
  const { state, version } = await side.handlers.appointment.read(appointmentStreamId(appointmentId));
  const { start, end } = isMade(state) ? state : seen;
  return { appointmentId, doctorId, patientId, start, end, version };
}

/** Where an appointment is, and whose slot and time follow it there. */
type AppointmentTime = { appointmentId: string; doctorId: string; patientId: string; start: string; end: string };

/**
 * The doctor's slot moved to where the appointment is, if it is elsewhere: the move held for it
 * there completed, or else restored, not moved, as the appointment's time may be off the grid of
 * a schedule changed since. Someone else holding that time is a double booking: reported through
 * `onError` at once (the hold-expiry process, sweeping the move later, reports it too), and left
 * for people to sort out, as moving the appointment back would undo a request that went through.
 */
export async function slotFollows(side: CommandSide, appointment: AppointmentTime, request: CommandOptions, now: string) {
  const { appointmentId, start, end } = appointment;
  const schedule = doctorScheduleStreamId(appointment.doctorId);
  let { state } = await side.handlers.doctorSchedule.read(schedule);
  if (slotHoldOf(state, appointmentId)?.start === start) {
    const completed = await side.handlers.doctorSchedule.handle(schedule, { type: 'CompleteSlotMove', data: { appointmentId, to: start, now } }, request).catch(unlessRefused);
    if (completed) return completed;
    // Refused: the hold went after the look (dropped by someone taking the move for dead). The
    // slot is restored there instead, as left where it was it kept the appointment's time free.
    ({ state } = await side.handlers.doctorSchedule.read(schedule));
  }
  const slot = slotOf(state, appointmentId);
  if (!slot || slot.start === start) return undefined;
  return side.handlers.doctorSchedule
    .handle(schedule, { type: 'RestoreSlot', data: { appointmentId, from: slot.start, start, end, now } }, request)
    .catch((error: unknown) => {
      // Not found: the slot went since the look (the appointment cancelled), nothing to follow.
      // Anything else is someone holding the appointment's time: told, as `undoing` tells it.
      if (error instanceof DomainError && !(error instanceof NotFoundError)) {
        side.onError?.(error, `move the slot of appointment ${appointmentId} to ${start}, where it is (refused: ${error.code}; a double booking for people to sort out)`);
      }
      return unlessRefused(error);
    });
}

/** The patient's time moved to where the appointment is, if it is elsewhere; as `slotFollows`. */
export async function timeFollows(side: CommandSide, appointment: AppointmentTime, request: CommandOptions) {
  const { appointmentId, patientId, start, end } = appointment;
  const agenda = patientAgendaStreamId(patientId);
  const time = reservationOf((await side.handlers.patientAgenda.read(agenda)).state, appointmentId);
  if (!time || time.start === start) return undefined;
  return side.handlers.patientAgenda
    .handle(agenda, { type: 'MoveTime', data: { patientId, appointmentId, from: time.start, newStart: start, newEnd: end } }, request)
    .catch(unlessRefused);
}

function unlessRefused(error: unknown): undefined {
  if (error instanceof DomainError) return undefined;
  throw error;
}

/** A rule or a stale pinned version refused the command: it will not happen, so what moved for it moves back. */
function isRefusal(error: unknown): boolean {
  return error instanceof DomainError || error instanceof VersionMismatchError;
}

/**
 * An undo whose resource is already gone (a cancellation meanwhile gave the slot back) has
 * nothing to undo; the refusal that led here is what the caller hears. Any other refusal of an
 * undo (the old slot or time taken meanwhile, say) leaves the appointment where it was and its
 * slot or time where this request moved it: reported, for people to sort out, as moving the
 * appointment would carry out a request that failed.
 */
async function undoing<Step>(side: CommandSide, appointmentId: string, undo: () => Promise<Step>): Promise<Step | undefined> {
  try {
    return await undo();
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    if (!(error instanceof NotFoundError)) {
      side.onError?.(error, `move back a refused reschedule of appointment ${appointmentId} (refused: ${error.code}; a double booking for people to sort out)`);
    }
    return undefined;
  }
}

/** The appointment first (the fact), then its slot and the patient's time are given back. */
export async function cancelAppointment(
  side: CommandSide,
  appointmentId: string,
  input: { reason: string },
  request: CommandOptions,
): Promise<CommandOutcome> {
  const result = await actOn(side, appointmentId, request, (actor, now) => ({
    type: 'CancelAppointment',
    data: { appointmentId, reason: input.reason, actor, now },
  }));
  const released = isMade(result.state) ? await releaseAppointmentTime(side, result.state, request) : [];
  return outcome(appointmentId, result, ...released);
}

export async function completeAppointment(
  side: CommandSide,
  appointmentId: string,
  input: { notes: string },
  request: CommandOptions,
): Promise<CommandOutcome> {
  const result = await actOn(side, appointmentId, request, (actor, now) => ({
    type: 'CompleteAppointment',
    data: { appointmentId, notes: input.notes, actor, now },
  }));
  return outcome(appointmentId, result, await patientTimeBack(side, result.state, request));
}

export async function markNoShow(side: CommandSide, appointmentId: string, request: CommandOptions): Promise<CommandOutcome> {
  const result = await actOn(side, appointmentId, request, (actor, now) => ({ type: 'MarkAppointmentNoShow', data: { appointmentId, actor, now } }));
  return outcome(appointmentId, result, await patientTimeBack(side, result.state, request));
}

/**
 * An appointment held or missed needs none of the patient's time any more: the rest of its slot
 * is theirs to book with another doctor. All of it goes back, not only what is left: what has
 * passed cannot collide with a booking, which is always in the future. The doctor's slot stays,
 * the visit's record and a time already begun, which nobody can book either. A request that dies
 * before this step leaves it to the hold-expiry process, which takes it again after its grace period.
 */
export async function patientTimeBack(side: CommandSide, state: AppointmentState, request: CommandOptions) {
  if (!isMade(state)) return undefined;
  const { appointmentId, patientId } = state;
  return side.handlers.patientAgenda.handle(patientAgendaStreamId(patientId), { type: 'ReleaseTime', data: { patientId, appointmentId } }, unpinned(request));
}

/** A command on one existing appointment by someone who may know of it, at the clock's now. */
async function actOn(
  side: CommandSide,
  appointmentId: string,
  request: CommandOptions,
  command: (actor: Actor, now: string) => AppointmentCommand,
) {
  await visibleAppointment(side, appointmentId, request.context.actor);
  const now = side.clock.now().toISOString();
  return side.handlers.appointment.handle(appointmentStreamId(appointmentId), command(request.context.actor, now), request);
}

/**
 * Frees the patient's time and the doctor's slot of an appointment; freeing what is free changes
 * nothing. Returns both steps' results, for the position a reader must reach to see them.
 *
 * The time goes first: the hold-expiry process keeps an orphan's slot in view until it sees it
 * freed (and the time only as part of it), so a sweep that dies between the two must leave the
 * slot held, which its next turn frees with the time again; the other way round, the time stayed
 * reserved for good.
 */
export async function releaseAppointmentTime(
  side: CommandSide,
  { appointmentId, doctorId, patientId }: { appointmentId: string; doctorId: string; patientId: string },
  request: CommandOptions,
) {
  const time = await side.handlers.patientAgenda.handle(
    patientAgendaStreamId(patientId),
    { type: 'ReleaseTime', data: { patientId, appointmentId } },
    unpinned(request),
  );
  const slot = await side.handlers.doctorSchedule.handle(doctorScheduleStreamId(doctorId), { type: 'ReleaseSlot', data: { appointmentId } }, unpinned(request));
  return [slot, time] as const;
}

/** A slot lasts the doctor's slot length; a doctor without a schedule takes no appointments. */
async function slotEnd(side: CommandSide, doctorId: string, start: string): Promise<string> {
  const { state } = await side.handlers.doctorSchedule.read(doctorScheduleStreamId(doctorId));
  if (state.status === 'unset') throw new NotFoundError(`doctor ${doctorId}`);
  return new Date(Date.parse(start) + state.schedule.slotMinutes * 60_000).toISOString();
}

/** An appointment exists for its patient, its doctor and admins; for anyone else it does not. */
async function visibleAppointment(side: CommandSide, appointmentId: string, actor: Actor) {
  const { state, version } = await side.handlers.appointment.read(appointmentStreamId(appointmentId));
  if (!isMade(state)) throw new NotFoundError(`appointment ${appointmentId}`);
  const party = actor.id === state.patientId || actor.id === state.doctorId || hasRole(actor, 'ADMIN');
  if (!party) throw new NotFoundError(`appointment ${appointmentId}`);
  return { state, version };
}
