import type { WithdrawSchedule } from '../../domain/doctor-schedule/doctor-schedule.commands.js';
import { doctorScheduleStreamId } from '../../domain/doctor-schedule/doctor-schedule.decider.js';
import { hasRole } from '../../domain/shared/actor.js';
import { NotFoundError } from '../../domain/shared/domain-error.js';
import { ForbiddenError } from '../../domain/shared/forbidden-error.js';
import type { EraseSubject, RecordErasure } from '../../domain/user/user.commands.js';
import { streamIdOf, userDecider } from '../../domain/user/user.decider.js';
import { currentRoles } from '../authorization/registered-users.js';
import type { CommandSide } from '../command-handlers.js';
import { assertExpectedVersion } from '../command-handling/errors.js';
import { outcome, unpinned, type CommandOutcome } from '../command-handling/command-outcome.js';
import type { CommandOptions } from '../command-handling/handle-command.js';
import type { PersonalDataVault } from './personal-data-vault.js';

/** Personal data kept outside the event log, where it can simply be deleted. */
export interface RecordsOutsideTheLog {
  /** Deletes the person's login (email, password hash), sessions and stored command responses. */
  eraseSubject(userId: string): Promise<void>;
}

export type ErasureDeps = {
  readonly side: CommandSide;
  readonly vault: PersonalDataVault;
  readonly outsideTheLog: RecordsOutsideTheLog;
  /**
   * Told as soon as the person's key is destroyed, so this process refuses their access tokens at
   * once; other processes learn of it from the key's tombstone, a moment later.
   */
  readonly keyDestroyed?: (userId: string) => void;
};

/**
 * Erases a person's personal data (GDPR Art. 17) without rewriting history: a doctor's schedule
 * is withdrawn (`ScheduleWithdrawn`); their data key is destroyed, so every personal field sealed
 * with it, in the log and in any copy, reads `[erased]` from now on; what sits outside the log is
 * deleted; then `SubjectErased` records it, and what sits outside the log is deleted again. Every
 * step is idempotent, and a retry takes them all again until `SubjectErased` is there (and the
 * last one after it), but for the rules and the key, which it checks and destroys only while the
 * key is there. The withdrawal goes first: a crash right after it leaves a doctor who takes no new
 * appointments until a retry erases them; after the key, a crash in between would leave an erased
 * doctor bookable, for appointments nobody could complete, until a retry that may never come. The
 * person's bookings and appointments stay, and can be cancelled.
 */
export async function eraseSubject(
  deps: ErasureDeps,
  userId: string,
  request: CommandOptions,
  input: { readonly reason?: string | undefined } = {},
): Promise<CommandOutcome> {
  const { actor } = request.context;
  // Checked here as well as by the decider, because the key is destroyed before it decides; and
  // against the stream, for a token outlives its admin's erasure or demotion.
  const roles = hasRole(actor, 'ADMIN') ? await currentRoles(deps.side.handlers.user, actor) : [];
  if (!roles.includes('ADMIN')) throw new ForbiddenError("Only an admin may erase a person's data");
  const streamId = streamIdOf(userId);
  // `SubjectErased` comes last: a retry of an erasure that went through is answered as it was.
  const original = await deps.side.handlers.user.applied(streamId, request.commandId);
  if (original) {
    // It may have stopped between its record and the delete that follows it.
    await deps.outsideTheLog.eraseSubject(userId);
    return outcome(userId, original);
  }
  const { state, version } = await deps.side.handlers.user.read(streamId);
  if (state.status !== 'registered') throw new NotFoundError('User');
  const erase = (): EraseSubject => ({
    type: 'EraseSubject',
    data: { userId, erasedBy: { id: actor.id, roles }, now: deps.side.clock.now(), ...(input.reason === undefined ? {} : { reason: input.reason }) },
  });
  // A key already destroyed (by an attempt of this request that failed later, or by another) puts
  // the erasure past its point of no return: every rule held when it went. Checked again, a role
  // granted since (AUDITOR: 403) or the pinned version it moved (412) refused every retry, and
  // the person stayed unreadable in the log yet named in every read model.
  if (!(await deps.vault.isErased(userId))) {
    // Likewise a pinned version, and every rule of the decider (one's own erasure, an auditor's):
    // they must refuse before the key is gone, not after.
    assertExpectedVersion(streamId, request.expectedVersion, version, () => userDecider.decide(erase(), state));
    userDecider.decide(erase(), state);
    await withdrawSchedule(deps, userId, state.roles.includes('DOCTOR'), request);
    await deps.vault.erase(userId, deps.side.clock.now());
  } else {
    // Not skipped for having been done before the key went: until `SubjectErased`, an admin may
    // still have made the person a doctor and published their week, and booking asks only that.
    await withdrawSchedule(deps, userId, state.roles.includes('DOCTOR'), request);
  }
  deps.keyDestroyed?.(userId);
  await deps.outsideTheLog.eraseSubject(userId);
  // Past the key, the erasure is done, and its record must follow whatever was appended meanwhile:
  // unpinned, and with no rule on roles checked again (they held before the key went). Pinned, a
  // role granted in between answered 412; decided as `EraseSubject`, AUDITOR granted in between
  // answered 403, to this request and to every retry; either way, without `SubjectErased` no read
  // model ever dropped the person's data.
  const record: RecordErasure = { ...erase(), type: 'RecordErasure' };
  const result = await deps.side.handlers.user.handle(streamId, record, unpinned(request));
  // Once more, now that `SubjectErased` is there: a signup retried for this person that found them
  // unerased may have written their login back since the delete above. Such a signup reads the
  // stream after its write and, finding the record, deletes the login itself; finding none, it
  // wrote before the record, so before this delete.
  await deps.outsideTheLog.eraseSubject(userId);
  return outcome(userId, result);
}

/**
 * A doctor's schedule is withdrawn even before they published one: a publication under way (their
 * own token, or an admin's checked just before) must meet a stream that moved on, or it would make
 * the erased doctor bookable. Anyone else gets no schedule stream for nothing, unless one exists
 * (a doctor once, or a retry of this erasure), whatever their roles now.
 */
async function withdrawSchedule(deps: ErasureDeps, userId: string, isDoctor: boolean, request: CommandOptions): Promise<void> {
  const schedule = doctorScheduleStreamId(userId);
  if (!isDoctor && (await deps.side.handlers.doctorSchedule.read(schedule)).version < 0) return;
  const withdraw: WithdrawSchedule = { type: 'WithdrawSchedule', data: { doctorId: userId, now: deps.side.clock.now().toISOString() } };
  await deps.side.handlers.doctorSchedule.handle(schedule, withdraw, unpinned(request));
}
