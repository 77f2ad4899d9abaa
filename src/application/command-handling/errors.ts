import { DomainError, NotFoundError } from '../../domain/shared/domain-error.js';
import { ForbiddenError } from '../../domain/shared/forbidden-error.js';
import { ConcurrencyError } from '../ports/event-store.js';

/**
 * The caller pinned the version it last saw (`If-Match`) and the aggregate has moved on since:
 * re-deciding on the newer state could do something the caller did not intend, so we refuse.
 */
export class VersionMismatchError extends Error {
  override readonly name = 'VersionMismatchError';
  constructor(
    readonly streamId: string,
    readonly expected: number,
    readonly actual: number | 'no_stream' | undefined,
  ) {
    super(`Stream ${streamId} is at version ${String(actual ?? 'unknown')}, not ${expected}`);
  }
}

/**
 * Refuses a command whose caller pinned (`If-Match`) another version than the stream's current
 * one (−1: none). `decide` runs the command on the current state first: a resource that does
 * not exist, or that the caller may not act on, is answered as such (404, 403), never as a stale
 * version (412), which also told a stranger its version (RFC 9110 §13.2.1: a precondition counts
 * only for a request that would otherwise succeed).
 */
export function assertExpectedVersion(streamId: string, expected: number | undefined, actual: number, decide?: () => unknown): void {
  if (expected === undefined || expected === actual) return;
  try {
    decide?.();
  } catch (error) {
    if (error instanceof NotFoundError || error instanceof ForbiddenError) throw error;
  }
  throw new VersionMismatchError(streamId, expected, actual < 0 ? 'no_stream' : actual);
}

/** Every retry of a command lost the race for its stream; the caller may try again later. */
export class TooMuchContentionError extends Error {
  override readonly name = 'TooMuchContentionError';
  constructor(
    readonly streamId: string,
    readonly attempts: number,
  ) {
    super(`Stream ${streamId}: gave up after ${attempts} concurrent-append conflicts`);
  }
}

/**
 * The command failed without its append being stored: a rule refused it, the caller's pinned
 * version was stale, or the stream's revision had moved (every time). Any other error (a
 * connection lost, a store that did not answer) leaves unknown whether the append went through.
 */
export function appendedNothing(error: unknown): boolean {
  return error instanceof DomainError || error instanceof VersionMismatchError || error instanceof TooMuchContentionError || error instanceof ConcurrencyError;
}
