import { createHash } from 'node:crypto';

/** A PostgreSQL session-level advisory lock, held on a connection of its own. */
export type HeldLock = {
  /**
   * A random advisory lock key that the session holding the lock took when it connected, and
   * that no other session ever takes. Every write of the runtime first checks that somebody
   * still holds it (fencing): that somebody can only be this session, and a session lock lasts
   * as long as its session, so losing the session stops writes at once even before `lost`
   * fires.
   */
  readonly sessionKey: bigint;
  /** Aborts when the session is gone or stops answering: another process may hold the lock now. */
  readonly lost: AbortSignal;
  /** Ends the session, which releases the lock. */
  release(): Promise<void>;
};

/**
 * One active instance per projection generation across processes. The adapter lives in
 * `src/infrastructure/projections/pg-advisory-locks.ts`: it needs a raw connection that is not
 * borrowed from the pool, and this layer knows no driver.
 */
export interface ProjectionLocks {
  /**
   * Waits until the lock `key` (a `pg_advisory_lock` bigint key) is held, trying again every so
   * often while another session holds it; `undefined` once `signal` aborts.
   */
  acquire(key: bigint, signal: AbortSignal): Promise<HeldLock | undefined>;
}

/**
 * A stable signed 64-bit key for `pg_advisory_lock`, from the first 8 bytes of SHA-256: the same
 * in every process and release, unlike a language's string hash.
 */
export function advisoryLockKey(text: string): bigint {
  return createHash('sha256').update(text).digest().readBigInt64BE(0);
}

/** The lock that makes one process the writer of a generation. */
export function generationLockKey(name: string, generation: number): bigint {
  return advisoryLockKey(`projection:${name}:${generation}`);
}
