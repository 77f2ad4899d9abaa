import type { Kysely } from 'kysely';
import { comparePositions, formatPosition, parsePosition, type Position } from '../../application/ports/position.js';
import { readActivePositions } from './projection-checkpoints.queries.js';

/**
 * The channel on which every committed batch of an active generation is announced:
 * `NOTIFY projection_checkpoint, '<projection name>:<position>'`, with the position in
 * `formatPosition` form, e.g. `bookings:1042.1042`. It is sent inside the batch's transaction, so
 * a listener hears it only once the rows are visible. A rebuild's swap announces the new active
 * generation's position the same way. PostgreSQL may fold identical notifications of one
 * transaction, and a listener that reconnects misses what was sent meanwhile: treat a
 * notification as a hint to act now, and re-read `readActivePositions` now and then.
 */
export const checkpointChannel = 'projection_checkpoint';

export type CheckpointNotification = { readonly name: string; readonly position: Position };

export function formatCheckpointNotification(notification: CheckpointNotification): string {
  return `${notification.name}:${formatPosition(notification.position)}`;
}

/** `undefined` for a payload `formatCheckpointNotification` could not have produced. */
export function parseCheckpointNotification(payload: string): CheckpointNotification | undefined {
  const separator = payload.lastIndexOf(':');
  if (separator <= 0) return undefined;
  const position = parsePosition(payload.slice(separator + 1));
  return position && { name: payload.slice(0, separator), position };
}

/** True when a projection at `checkpoint` has processed the event at `position`. */
export function hasProcessed(checkpoint: Position | undefined, position: Position): boolean {
  return checkpoint !== undefined && comparePositions(checkpoint, position) >= 0;
}

/**
 * Checkpoint notifications as they arrive, from one `LISTEN projection_checkpoint` connection
 * shared by all waiters (see `src/infrastructure/projections/pg-checkpoint-listener.ts`).
 */
export interface CheckpointNotifications {
  /** Calls `listener` for every notification until the returned function is called. */
  subscribe(listener: (notification: CheckpointNotification) => void): () => void;
  /**
   * Which connection notifications arrive on: `undefined` while none is listening (they are
   * being lost), and a new number after every reconnect, since those sent in between were lost.
   * Whoever trusts "no notification, no change" checks it has not moved.
   */
  readonly epoch: number | undefined;
}

export type WaitForPositionOptions = {
  readonly db: Kysely<unknown>;
  readonly notifications: CheckpointNotifications;
  /** Every projection the query reads. */
  readonly projections: readonly string[];
  /** The `Event-Position` the client got from a command. */
  readonly position: Position;
  readonly timeoutMs: number;
  /** How often to re-read the checkpoints in case a notification was missed. Default 500 ms. */
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
};

/**
 * Resolves true as soon as every named projection's active generation has committed `position`
 * (read-your-writes), false after `timeoutMs` or when `signal` aborts. Subscribes before the first
 * read, so a batch committing in between is not missed. A read of the checkpoints still waiting
 * for a connection from a pool run dry is given up at the deadline: the wait answers on time.
 */
export async function waitForPosition(options: WaitForPositionOptions): Promise<boolean> {
  const { db, notifications, position, timeoutMs, pollMs = 500, signal } = options;
  const waiting = new Set(options.projections);
  let wake: (() => void) | undefined;
  const unsubscribe = notifications.subscribe((notification) => {
    if (waiting.has(notification.name) && hasProcessed(notification.position, position)) {
      waiting.delete(notification.name);
      if (waiting.size === 0) wake?.();
    }
  });
  const deadline = Date.now() + timeoutMs;
  try {
    while (!signal?.aborted) {
      const current = await withinDeadline(readActivePositions(db, [...waiting]), deadline, timeoutMs > 0);
      if (!current) return false;
      for (const [name, checkpoint] of current) if (hasProcessed(checkpoint, position)) waiting.delete(name);
      if (waiting.size === 0) return true;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return false;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, Math.min(pollMs, remaining));
        signal?.addEventListener('abort', done, { once: true });
        wake = done;
      });
      if (waiting.size === 0) return true;
    }
    return false;
  } finally {
    unsubscribe();
  }
}

/**
 * `read`'s answer, or undefined once `deadline` (a `Date.now()` time) has passed before it came.
 * Unbounded when not `bounded`: a wait of no time at all still reads the checkpoints once.
 */
async function withinDeadline<T>(read: Promise<T>, deadline: number, bounded: boolean): Promise<T | undefined> {
  if (!bounded) return read;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()))));
  // Given up, the read still runs to its end once it has a connection: nobody is left to hear it fail.
  read.catch(() => undefined);
  try {
    return await Promise.race([read, late]);
  } finally {
    clearTimeout(timer);
  }
}
