import { maxPosition, type Position } from '../ports/position.js';
import { appendedNothing } from './errors.js';
import type { CommandOptions, CommandResult } from './handle-command.js';

/** What the HTTP edge answers for an accepted command (API.md "Command results"). */
export type CommandOutcome = {
  readonly id: string;
  readonly streamId: string;
  readonly version: number;
  readonly position: Position;
};

/**
 * The answer names the main aggregate's stream and version; its position is the last of every
 * step the command took (`later`: consequences appended after the main step, such as dates given
 * back after a cancellation), so that a reader waiting on it sees all of them.
 */
export function outcome(id: string, result: CommandResult<unknown, unknown>, ...later: ReadonlyArray<{ readonly position: Position } | undefined>): CommandOutcome {
  const position = later.reduce((last, step) => (step ? maxPosition(last, step.position) : last), result.position);
  return { id, streamId: result.streamId, version: result.version, position };
}

/**
 * Runs the steps of a command whose request has no Idempotency-Key, which is never retried as
 * itself: its client's retry is a new command, which would find what these steps took held by this
 * one until a sweep gave it back. So when a step fails leaving its append unknown (not a refusal,
 * a stale pinned version or races lost for its stream: those prove nothing was stored, and giving
 * up then only added an event for good, queued behind a hot stream again), `giveUp` gives the
 * command's id up and, only if it was, what the steps took back at once; the error then names what
 * that appended, for a reader waiting to see it free. A later step losing its races after an
 * earlier one took its resource leaves that resource to the sweep. Looking at the streams instead
 * proves nothing: a failed append may have committed with its answer lost, or still commit later
 * (PostgreSQL finishes a statement whose connection died). Giving the id up is an append on the
 * main stream while still empty, so of it and the main append landing late, only the first stands.
 * Best effort: with the database still away, the sweep gives it back. A keyed request's retry
 * finds what it took and carries on, so it keeps it.
 */
export async function givenUpOnFailure<Result>(
  request: CommandOptions,
  steps: () => Promise<Result>,
  giveUp: () => Promise<ReadonlyArray<{ readonly position: Position } | undefined>>,
): Promise<Result> {
  try {
    return await steps();
  } catch (error) {
    if (request.freshCommandId === true && !appendedNothing(error)) {
      refusedAfter(error, await giveUp().catch(() => []));
    }
    throw error;
  }
}

/**
 * Where the appends of a refused command end. A command may take steps, be refused and undo them
 * (a slot moved, then moved back): the refusal is what the caller hears, and this position what a
 * reader waits for to see the undoing rather than the step (API.md "Read-your-writes"). Kept
 * beside the error, not in an error type of its own: callers and the HTTP edge tell refusals
 * apart by their class and code, which must stay as they are.
 */
const appendedBeforeRefusal = new WeakMap<object, Position>();

/**
 * Notes, before the caller throws it, that `error` refuses a command after it took `steps` (and their undoing).
 * A step that appended nothing names its stream's last event, which a reader may as well wait for.
 */
export function refusedAfter(error: unknown, steps: ReadonlyArray<{ readonly position: Position } | undefined>): void {
  if (typeof error !== 'object' || error === null) return;
  let last = appendedBeforeRefusal.get(error);
  for (const step of steps) if (step) last = last ? maxPosition(last, step.position) : step.position;
  if (last) appendedBeforeRefusal.set(error, last);
}

/** The position of the last event a refused command appended before its refusal, if it appended any. */
export function refusalPosition(error: unknown): Position | undefined {
  return typeof error === 'object' && error !== null ? appendedBeforeRefusal.get(error) : undefined;
}

/**
 * The options for a step on another stream than the one the caller pinned: its `If-Match`
 * speaks of the main aggregate only.
 */
export function unpinned(request: CommandOptions): CommandOptions {
  return { commandId: request.commandId, context: request.context, ...(request.freshCommandId ? { freshCommandId: true } : {}) };
}

/** A step that undoes an earlier step of the same command needs event ids of its own. */
export function compensating(request: CommandOptions, step: string): CommandOptions {
  return { commandId: `${request.commandId}:undo:${step}`, context: request.context, ...(request.freshCommandId ? { freshCommandId: true } : {}) };
}

/**
 * Runs a step that takes a resource for a command (dates, a slot, the patient's time) and makes
 * sure it is held when the step returns. A retried command's step is recognised by its event ids
 * and answered "already applied", yet what it took may have been given back since: the hold
 * lapsed and was released, the orphan sweep freed the slot, the command's own undo ran. Then,
 * unless `needed` says the command no longer needs it, the step is taken again under ids of its
 * own, derived from the version of the event it found. A retake found applied and given back in
 * turn leads on to the next id in the same way, so every retry walks the same chain of retakes
 * to its end: with one retake only, a third try found the second's retake and stopped there,
 * the resource given back.
 */
export async function takeStep<State, Event>(
  request: CommandOptions,
  step: (options: CommandOptions) => Promise<CommandResult<State, Event>>,
  holds: (state: State) => boolean,
  needed: () => Promise<boolean> = async () => true,
): Promise<CommandResult<State, Event>> {
  let result = await step(request);
  for (let retakes = 0; retakes < maxRetakes; retakes++) {
    if (!result.alreadyApplied || holds(result.state) || !(await needed())) return result;
    // A step pinned to a version stays pinned when taken again: it was decided on that version.
    const pinned = request.expectedVersion === undefined ? {} : { expectedVersion: request.expectedVersion };
    result = await step({ commandId: `${request.commandId}:again:${result.version}`, context: request.context, ...pinned });
  }
  return result;
}

/** Far more retakes than retries of one command see; only a loop gone wrong would reach it. */
const maxRetakes = 20;
