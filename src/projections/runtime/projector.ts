import type { Kysely, Transaction } from 'kysely';
import type { EventStore, RecordedEvent } from '../../application/ports/event-store.js';
import { UnrevealableEventError } from '../../application/privacy/revealing-event-store.js';
import { comparePositions, formatPosition, type Position } from '../../application/ports/position.js';
import type { CheckpointClaims } from './checkpoint-claims.js';
import { sleep } from '../../application/sleep.js';
import { batchEvents } from './event-batches.js';
import {
  claimBatch,
  deactivateGeneration,
  limitLockWaits,
  lockActiveGeneration,
  publishViews,
  readActiveGeneration,
  readGeneration,
  readHeldCheckpoint,
  recordFailure,
  recordSwapStarved,
  retireGeneration,
  rowPosition,
  withSearchPath,
  type GenerationRef,
} from './projection-checkpoints.queries.js';
import type { CheckpointRow } from './projection-checkpoints.table.js';
import { generationSchema, type Projection } from './projection.js';
import type { ProjectorMetrics } from './projector-metrics.js';
import { checkpointChannel, formatCheckpointNotification } from './wait-for-position.js';
import { isLockUnavailable, isTransientDatabaseError } from './transient-errors.js';

export type ProjectorSettings = {
  /** Most events per transaction. */
  readonly batchSize: number;
  /** Longest a live event waits for others to share its transaction. */
  readonly batchMaxWaitMs: number;
  /**
   * Tries of a failing event, alone in its transaction, before the projection stops as `failed`;
   * tries that met a database error that passes (`isTransientDatabaseError`) do not count.
   */
  readonly maxAttempts: number;
  /** First retry delay; it doubles with every attempt up to `retryMaxDelayMs`. */
  readonly retryDelayMs: number;
  readonly retryMaxDelayMs: number;
  /** A rebuild that has seen no event for this long checks whether it can swap in. */
  readonly idleMs: number;
};

/** pino's `logger.info(fields, message)` shape, so that any pino logger fits. */
export type ProjectionLogger = {
  debug?(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
};

/**
 * Why a projector returned: `stopped` (its signal aborted), `failed` (recorded as such),
 * `retired` (a rebuild swapped in, or a newer version did), `lost` (its writes are no longer
 * accepted, or the database would not take them: let the supervisor start over).
 */
export type ProjectorExit = 'stopped' | 'failed' | 'retired' | 'lost';

type Committed = 'committed';

/**
 * Longest a swap's first tries wait for a lock: for reads of the old views to end, or for the live
 * generation's batch in flight. Past it the batch commits without the swap, which is tried again
 * later. Reads that never leave the views free that long (one starting before the last ends) would
 * turn every try away for ever, so the wait doubles after every `busySwapsPerDoubling` tries turned
 * away, up to `maxSwapLockTimeoutMs`: new reads then queue behind a try for at most that long,
 * rather than the read model never being rebuilt.
 */
const firstSwapLockTimeoutMs = 100;
const busySwapsPerDoubling = 3;
const maxSwapLockTimeoutMs = 2000;

/** Swap tries in a row that did not swap, past which the rebuild is reported as an error. */
const failedSwapsReported = 10;

/**
 * What a swap try found under its locks: `swapped`; `superseded` (a newer version is active);
 * `ours` (this generation is active already: an earlier swap's answer was lost); `behind` (the
 * active generation moved on past the batch); `busy` (a lock not granted in time).
 */
type SwapOutcome = 'swapped' | 'superseded' | 'ours' | 'behind' | 'busy';

/** Raised inside a swap's transaction to roll it back when the swap is not to happen. */
class SwapDeclined extends Error {
  override readonly name = 'SwapDeclined';

  constructor(readonly outcome: Exclude<SwapOutcome, 'swapped' | 'busy'>) {
    super(`The swap is not due: ${outcome}`);
  }
}

/** Where a batch leaves the checkpoint. */
type Progress = { readonly position: Position; readonly events: number; readonly lastEventRecordedAt: Date | undefined };

/** Raised inside a batch transaction to roll it back when the checkpoint is no longer ours to move. */
class NotOurs extends Error {
  override readonly name = 'NotOurs';
}

/**
 * Raised inside a batch transaction to roll it back when the checkpoint already stands at the
 * batch or past it: an earlier try's COMMIT landed though its answer was lost.
 */
class AlreadyCommitted extends Error {
  override readonly name = 'AlreadyCommitted';

  constructor(readonly position: Position) {
    super(`The checkpoint already stands at ${formatPosition(position)}`);
  }
}

export type ProjectorDeps = {
  readonly db: Kysely<unknown>;
  /** Where batches without a handled event move their checkpoint, with other projectors'. */
  readonly claims: CheckpointClaims;
  readonly eventStore: EventStore;
  readonly projection: Projection;
  readonly ref: GenerationRef;
  readonly row: CheckpointRow;
  readonly settings: ProjectorSettings;
  readonly logger: ProjectionLogger;
  readonly now: () => Date;
  readonly metrics: ProjectorMetrics;
};

/**
 * Keeps one generation of one projection up to date while its process holds the generation's
 * lock: subscribes from the checkpoint, and commits each batch's rows with the checkpoint (and
 * the NOTIFY) in one transaction. A rebuilding generation also swaps itself in once caught up.
 */
export class Projector {
  private position: Position;
  private active: boolean;
  private readonly handled: ReadonlySet<string>;
  private readonly schema: string;
  /** Swap tries in a row that found a lock taken, and when (`performance.now()`) the next may be. */
  private busySwaps = 0;
  private nextSwapAt = 0;
  /** Swap tries in a row that found the live generation gone past the batch. */
  private behindSwaps = 0;

  constructor(private readonly deps: ProjectorDeps) {
    this.position = rowPosition(deps.row);
    this.active = deps.row.active;
    this.handled = new Set(deps.projection.eventTypes);
    this.schema = generationSchema(deps.ref.name, deps.ref.generation);
    deps.metrics.position = this.position;
  }

  async run(signal: AbortSignal): Promise<ProjectorExit> {
    const { eventStore, settings, logger, metrics } = this.deps;
    // The event the subscription last broke on for want of revealing it, and how many times running.
    let unrevealable: { readonly eventId: string; readonly attempts: number } | undefined;
    while (!signal.aborted) {
      metrics.state = this.active ? 'running' : 'rebuilding';
      const subscription = new AbortController();
      try {
        // No server-side type filter: the checkpoint must pass every event, or a reader waiting
        // for the position of an event this projection ignores would wait in vain.
        const events = eventStore.subscribeToAll({ after: this.position, signal: AbortSignal.any([signal, subscription.signal]) });
        const batches = batchEvents(events, { size: settings.batchSize, maxWaitMs: settings.batchMaxWaitMs, idleMs: settings.idleMs });
        for await (const batch of batches) {
          const outcome = await this.process(batch, batch.length < settings.batchSize, signal);
          if (outcome !== 'committed') return outcome;
          if (signal.aborted) break;
        }
        return 'stopped';
      } catch (error) {
        if (signal.aborted) return 'stopped';
        if (!(error instanceof UnrevealableEventError)) {
          logger.warn({ ...this.fields(), err: error }, 'Projection subscription failed; subscribing again from the checkpoint');
          await sleep(settings.retryDelayMs, signal);
          continue;
        }
        // Subscribing again would meet the same event every time, and nothing may be skipped: it
        // is tried like an event the handler fails on, then the projection stops there, on record.
        const attempt = unrevealable?.eventId === error.event.id ? unrevealable.attempts + 1 : 1;
        unrevealable = { eventId: error.event.id, attempts: attempt };
        if (attempt >= settings.maxAttempts) return this.fail(error.event, error);
        const delayMs = this.retryDelayMs(attempt);
        logger.warn({ ...this.fields(), ...eventFields(error.event), err: error, attempt, delayMs }, 'Projection could not read an event; retrying');
        await sleep(delayMs, signal);
      } finally {
        subscription.abort();
      }
    }
    return 'stopped';
  }

  /**
   * Commits a batch; if it fails, retries its events one per transaction, which both gets the
   * good ones through and pins the failure on one event for the record.
   */
  private async process(batch: readonly RecordedEvent[], atTail: boolean, signal: AbortSignal): Promise<Committed | ProjectorExit> {
    // A swap's catch-up may have committed events the subscription delivers again afterwards.
    const fresh = batch.filter((event) => comparePositions(event.position, this.position) > 0);
    if (fresh.length === 0) return batch.length === 0 && !this.active ? this.attempt(() => this.commit([], true)) : 'committed';
    // A rebuilding generation at the tail tries its swap with whatever came, even one event: at
    // a trickle, batches of one may be all there is for longer than an idle heartbeat waits.
    if (fresh.length > 1 || (atTail && !this.active)) {
      try {
        return await this.commit(fresh, atTail);
      } catch (error) {
        if (error instanceof NotOurs) return this.whyNotOurs();
        this.deps.logger.warn({ ...this.fields(), err: error, events: fresh.length }, 'Projection batch failed; retrying its events one by one');
      }
    }
    for (const event of fresh) {
      if (comparePositions(event.position, this.position) <= 0) continue;
      const outcome = await this.retrying(event, signal);
      if (outcome !== 'committed') return outcome;
    }
    return 'committed';
  }

  private async attempt(work: () => Promise<Committed | 'retired'>): Promise<Committed | ProjectorExit> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof NotOurs) return this.whyNotOurs();
      this.deps.logger.warn({ ...this.fields(), err: error }, 'Projection swap check failed; trying again later');
      return 'committed';
    }
  }

  /**
   * Tries one event until it commits. Only the errors that may be the event's own count towards
   * `maxAttempts`: a database error that passes (`isTransientDatabaseError`: a deadlock, a full
   * connection table, a lost connection) is waited out however long it lasts, since a projection
   * failed over an outage would stay stopped, holding its lock, long after the outage ended.
   */
  private async retrying(event: RecordedEvent, signal: AbortSignal): Promise<Committed | ProjectorExit> {
    const { settings, logger } = this.deps;
    let counted = 0;
    for (let attempt = 1; ; attempt += 1) {
      if (signal.aborted) return 'stopped';
      try {
        return await this.commit([event], false);
      } catch (error) {
        if (error instanceof NotOurs) return this.whyNotOurs();
        const transient = isTransientDatabaseError(error);
        if (!transient) counted += 1;
        if (counted >= settings.maxAttempts) return this.fail(event, error);
        const delayMs = this.retryDelayMs(attempt);
        logger.warn({ ...this.fields(), ...eventFields(event), err: error, attempt, transient, delayMs }, 'Projection failed on an event; retrying');
        await sleep(delayMs, signal);
      }
    }
  }

  /** The wait after failed try `attempt` (from 1): doubling from `retryDelayMs`, at most `retryMaxDelayMs`. */
  private retryDelayMs(attempt: number): number {
    const { retryDelayMs, retryMaxDelayMs } = this.deps.settings;
    return Math.min(retryDelayMs * 2 ** (attempt - 1), retryMaxDelayMs);
  }

  /**
   * The rows, a rebuild's swap when due, the checkpoint and the notification, all or nothing;
   * nothing at all when an earlier try has committed them already.
   */
  private async commit(events: readonly RecordedEvent[], atTail: boolean): Promise<Committed | 'retired'> {
    try {
      return await (!this.active && atTail ? this.commitAtTail(events) : this.commitBatch(events));
    } catch (error) {
      if (!(error instanceof AlreadyCommitted)) throw error;
      this.deps.logger.warn({ ...this.fields(), checkpoint: formatPosition(error.position) }, 'Projection batch had been committed already; going on past it');
      this.position = error.position;
      this.deps.metrics.position = error.position;
      // The batch may have been a swap: then this generation is live, and its commits must announce it.
      // A failed look is left to the next tail check, which finds the same row (`commitAtTail`).
      if (!this.active) {
        const row = await readGeneration(this.deps.db, this.deps.ref.name, this.deps.ref.generation).catch(() => undefined);
        if (row?.active) this.swappedAlready(row);
      }
      return 'committed';
    }
  }

  private async commitBatch(events: readonly RecordedEvent[]): Promise<Committed> {
    const { db, projection } = this.deps;
    const last = events[events.length - 1];
    if (!last) return 'committed';
    const started = performance.now();
    const progress: Progress = { position: last.position, events: events.length, lastEventRecordedAt: last.recordedAt };
    const relevant = events.filter((event) => this.handled.has(event.type));
    if (relevant.length === 0) {
      await this.claimAlone(progress);
    } else {
      await db.transaction().execute(async (trx) => {
        // Checkpoint first: the same statement scopes search_path to this generation for apply.
        await this.claim(trx, progress, { activate: false, schema: this.schema });
        await projection.apply(trx, relevant);
      });
    }
    this.committed(progress, started);
    return 'committed';
  }

  /**
   * A rebuilding generation at the live tail: its batch, then the swap if it has caught up with
   * the active generation and no newer version is active (see `swapIn`).
   *
   * A batch that came short is no proof of the tail: a page boundary or a slow read cuts one short
   * anywhere in a catch-up. So it looks first where the active generation stands, and reads at
   * most a batch towards it; only a look that gets there goes on to the swap. What it read is
   * applied either way: the catch-up goes on past it, and the subscription's copies of those
   * events are skipped. (Read to the target unbounded, a rebuild far back held the rest of the log
   * in memory in one transaction: nine at once ran the projector out of heap.)
   *
   * The look and the read come before any transaction opens: the log is read through the same
   * pool that lends the transactions their connections, so a swap reading with its transaction
   * open held one connection while it waited for another, and as many swaps as connections (or a
   * swap, the active projector it blocks, and too small a pool) froze the process for good. This
   * way every transaction of the runtime needs its one connection and nothing else from the pool,
   * whatever the pool's size and however many swap at once.
   */
  private async commitAtTail(events: readonly RecordedEvent[]): Promise<Committed | 'retired'> {
    const { db, ref, now } = this.deps;
    if (performance.now() < this.nextSwapAt) return this.commitBatch(events);
    const seen = await readActiveGeneration(db, ref.name);
    if (this.supersededBy(seen)) {
      await retireGeneration(db, ref, now());
      return 'retired';
    }
    if (seen?.generation === ref.generation) {
      this.swappedAlready(seen);
      return this.commitBatch(this.after(events));
    }
    const from = events[events.length - 1]?.position ?? this.position;
    const ahead = seen ? await this.eventsUpTo(from, rowPosition(seen)) : { events: [], reached: true };
    const batch = [...events, ...ahead.events];
    return ahead.reached ? this.swapIn(batch) : this.commitBatch(batch);
  }

  /**
   * In one transaction: the active generation's row locked (its projector waits at its next
   * commit), and, if that one is no further than the batch, the batch applied, that one retired,
   * the read schema's views repointed (`publishViews`, whose drop takes them from readers) and the
   * checkpoint moved. Everything commits together, so readers see the old tables or the new ones
   * at a position at least as far, never a step back.
   *
   * The views come last, after the batch: from the moment they are dropped every read waits for
   * the COMMIT, so they are held only for the drop, the create and the commit, however long the
   * batch takes to apply. Every lock is waited for at most the try's lock timeout (see
   * `firstSwapLockTimeoutMs`): a read in progress, or the live generation's batch, makes the try roll
   * back, commit its batch alone and try again later with growing delays, rather than hold the
   * transaction's id, which every event subscriber's horizon waits on, and queue every new read
   * behind it for as long as the read lasts. If the active generation moved on between the look
   * (see `commitAtTail`) and the row lock, it is not followed under its lock, which would mean
   * reading the log with the transaction open: the batch commits on its own, and the events that
   * moved it, which the subscription brings next, make the next try.
   */
  private async swapIn(events: readonly RecordedEvent[]): Promise<Committed | 'retired'> {
    const { db, ref, now } = this.deps;
    const started = performance.now();
    const last = events[events.length - 1];
    const progress: Progress = { position: last?.position ?? this.position, events: events.length, lastEventRecordedAt: last?.recordedAt };
    let outcome: SwapOutcome;
    let active: CheckpointRow | undefined;
    try {
      outcome = await db.transaction().execute(async (trx) => {
        await limitLockWaits(trx, this.swapLockTimeoutMs());
        active = await lockActiveGeneration(trx, ref.name);
        const declined = this.declines(active, progress.position);
        if (declined) throw new SwapDeclined(declined);
        await this.apply(trx, events);
        if (active) await deactivateGeneration(trx, ref.name, active.generation, now());
        await publishViews(trx, ref.name, this.schema);
        await this.claim(trx, progress, { activate: true });
        return 'swapped' as const;
      });
    } catch (error) {
      if (error instanceof SwapDeclined) outcome = error.outcome;
      else if (isLockUnavailable(error)) outcome = 'busy';
      else throw error;
    }
    switch (outcome) {
      case 'swapped':
        this.swapTriesOver();
        this.committed(progress, started);
        this.active = true;
        this.deps.metrics.state = 'running';
        this.deps.logger.info({ ...this.fields() }, 'Projection rebuild caught up and swapped in');
        return 'committed';
      case 'superseded':
        this.swapTriesOver();
        await retireGeneration(db, ref, now());
        return 'retired';
      case 'ours':
        this.swapTriesOver();
        if (active) this.swappedAlready(active);
        return this.commitBatch(this.after(events));
      case 'busy':
      case 'behind':
        await this.swapFailed(outcome);
        return this.commitBatch(events);
      default: {
        const _exhaustive: never = outcome;
        return _exhaustive;
      }
    }
  }

  /** The next swap try's lock timeout: doubled after every `busySwapsPerDoubling` tries turned away. */
  private swapLockTimeoutMs(): number {
    return Math.min(firstSwapLockTimeoutMs * 2 ** Math.floor(this.busySwaps / busySwapsPerDoubling), maxSwapLockTimeoutMs);
  }

  /**
   * A swap try that rolled back. Turned away by a lock, the next waits a growing delay (and
   * longer for its locks); behind, the next comes with the next batch, as soon as the live
   * generation's events that moved it arrive. Either way the tries are counted in the status, and
   * a rebuild that keeps failing to swap is reported as an error: it stays `rebuilding` while
   * the read model goes on serving the old version.
   */
  private async swapFailed(outcome: 'busy' | 'behind'): Promise<void> {
    const { logger, metrics } = this.deps;
    const lockTimeoutMs = this.swapLockTimeoutMs();
    if (outcome === 'busy') {
      this.busySwaps += 1;
      const delayMs = this.retryDelayMs(this.busySwaps);
      this.nextSwapAt = performance.now() + delayMs;
      logger.warn(
        { ...this.fields(), attempt: this.busySwaps, lockTimeoutMs, delayMs },
        'Projection swap found its views or the live generation busy; committing the batch alone and trying again later',
      );
    } else {
      this.behindSwaps += 1;
      logger.debug?.({ ...this.fields(), attempt: this.behindSwaps }, 'Projection swap found the live generation past its batch; committing the batch alone and trying again with the next');
    }
    metrics.failedSwapTries = this.busySwaps + this.behindSwaps;
    if (metrics.failedSwapTries === failedSwapsReported) await this.reportSwapStarved(lockTimeoutMs);
  }

  private async reportSwapStarved(lockTimeoutMs: number): Promise<void> {
    const { db, ref, logger, metrics, now } = this.deps;
    const message =
      `Projection rebuild has failed to swap in ${metrics.failedSwapTries} times in a row ` +
      `(${this.busySwaps} turned away by a lock, the last after ${lockTimeoutMs} ms; ${this.behindSwaps} behind the live generation); still trying`;
    metrics.failed({ message, eventType: null, position: null });
    logger.error({ ...this.fields(), busy: this.busySwaps, behind: this.behindSwaps, lockTimeoutMs }, message);
    // For the admin API, which shows the rows; a note not written is still in the status and the log.
    await recordSwapStarved(db, ref, { at: now(), error: message }).catch((error: unknown) => {
      logger.warn({ ...this.fields(), err: error }, 'Could not note the starved swap on the checkpoint row');
    });
  }

  private swapTriesOver(): void {
    this.busySwaps = 0;
    this.behindSwaps = 0;
    this.deps.metrics.failedSwapTries = 0;
  }

  /** Why the swap of a batch ending at `position` is not to happen under `active`, if it is not. */
  private declines(active: CheckpointRow | undefined, position: Position): SwapDeclined['outcome'] | undefined {
    if (!active) return undefined;
    if (this.supersededBy(active)) return 'superseded';
    if (active.generation === this.deps.ref.generation) return 'ours';
    return comparePositions(rowPosition(active), position) > 0 ? 'behind' : undefined;
  }

  /**
   * This generation's row is the active one: a swap whose answer was lost went through. Its row,
   * which only this projector writes while it holds the lock, says how far that swap got.
   */
  private swappedAlready(row: CheckpointRow): void {
    this.active = true;
    this.deps.metrics.state = 'running';
    const position = rowPosition(row);
    if (comparePositions(position, this.position) > 0) {
      this.position = position;
      this.deps.metrics.position = position;
    }
    this.deps.logger.info({ ...this.fields() }, 'Projection rebuild had swapped in already; going on as the active generation');
  }

  /** The events past the checkpoint. */
  private after(events: readonly RecordedEvent[]): RecordedEvent[] {
    return events.filter((event) => comparePositions(event.position, this.position) > 0);
  }

  /** A newer version is active: this generation would never be swapped in. */
  private supersededBy(active: CheckpointRow | undefined): boolean {
    return active !== undefined && active.version > this.deps.row.version;
  }

  /**
   * Moves the checkpoint in the batch's transaction (or as one of its own), and announces it
   * when readers see this generation; throws `NotOurs` when the fence refuses the write.
   */
  private async claim(executor: Kysely<unknown>, progress: Progress, options: { activate: boolean; schema?: string }): Promise<void> {
    const { ref, now } = this.deps;
    const moved = await claimBatch(executor, ref, { ...progress, now: now(), activate: options.activate }, {
      schema: options.schema,
      notify: this.notification(progress, options.activate),
    });
    if (!moved) throw await this.refusal(executor, progress);
  }

  /**
   * A batch with no rows to write: its checkpoint moves in a statement and transaction of its
   * own, shared with the other projectors that have nothing else to write just now.
   */
  private async claimAlone(progress: Progress): Promise<void> {
    const { claims, ref, now } = this.deps;
    const moved = await claims.claim({ ref, update: { ...progress, now: now() }, notify: this.notification(progress) });
    if (!moved) throw await this.refusal(this.deps.db, progress);
  }

  /**
   * Why the fence refused a claim: the generation is not ours any more, or the batch is in. Asked
   * on the claim's own transaction when it has one: a second connection from the pool, wanted
   * while this one is held, is how a pool runs dry with everyone waiting.
   */
  private async refusal(executor: Kysely<unknown>, progress: Progress): Promise<NotOurs | AlreadyCommitted> {
    const held = await readHeldCheckpoint(executor, this.deps.ref);
    return held && comparePositions(held, progress.position) >= 0 ? new AlreadyCommitted(held) : new NotOurs();
  }

  /** Readers wait on the active generation only: a rebuild announces itself once it swaps in. */
  private notification(progress: Progress, activate = false): { channel: string; payload: string } | undefined {
    if (!this.active && !activate) return undefined;
    return { channel: checkpointChannel, payload: formatCheckpointNotification({ name: this.deps.projection.name, position: progress.position }) };
  }

  private committed(progress: Progress, started: number): void {
    this.position = progress.position;
    if (progress.events === 0) return;
    this.deps.metrics.batchCommitted({
      position: progress.position,
      events: progress.events,
      durationMs: performance.now() - started,
      lastEventRecordedAt: progress.lastEventRecordedAt ?? this.deps.now(),
    });
  }

  /** For the swap's transaction, whose checkpoint statements follow: search_path is restored after. */
  private async apply(trx: Transaction<unknown>, events: readonly RecordedEvent[]): Promise<void> {
    const relevant = events.filter((event) => this.handled.has(event.type));
    if (relevant.length > 0) await withSearchPath(trx, this.schema, () => this.deps.projection.apply(trx, relevant));
  }

  /** The events after `from` up to `target`, at most a batch of them, and whether they got there. */
  private async eventsUpTo(from: Position, target: Position): Promise<{ events: RecordedEvent[]; reached: boolean }> {
    const events: RecordedEvent[] = [];
    if (comparePositions(target, from) <= 0) return { events, reached: true };
    for await (const event of this.deps.eventStore.readAll({ after: from, maxCount: this.deps.settings.batchSize })) {
      if (comparePositions(event.position, target) > 0) break;
      events.push(event);
    }
    return { events, reached: comparePositions(events[events.length - 1]?.position ?? from, target) >= 0 };
  }

  private async fail(event: RecordedEvent, error: unknown): Promise<ProjectorExit> {
    const { db, ref, logger, metrics, now } = this.deps;
    const message = error instanceof Error ? error.message : String(error);
    metrics.failed({ message, eventType: event.type, position: event.position });
    metrics.state = 'failed';
    logger.error(
      { ...this.fields(), ...eventFields(event), err: error, attempts: this.deps.settings.maxAttempts },
      'Projection stopped: it keeps failing on an event',
    );
    try {
      const recorded = await recordFailure(db, ref, {
        at: now(),
        error: message,
        event: { position: event.position, type: event.type, id: event.id },
      });
      return recorded ? 'failed' : this.whyNotOurs();
    } catch (recordError) {
      logger.error({ ...this.fields(), err: recordError }, 'Could not record the projection failure');
      return 'lost';
    }
  }

  private async whyNotOurs(): Promise<ProjectorExit> {
    try {
      const row = await readGeneration(this.deps.db, this.deps.ref.name, this.deps.ref.generation);
      return !row || row.status === 'retired' ? 'retired' : 'lost';
    } catch {
      return 'lost';
    }
  }

  private fields() {
    const { ref } = this.deps;
    return { projection: ref.name, generation: ref.generation, position: formatPosition(this.position) };
  }
}

function eventFields(event: RecordedEvent) {
  return { eventId: event.id, eventType: event.type, eventPosition: formatPosition(event.position), streamId: event.streamId };
}
