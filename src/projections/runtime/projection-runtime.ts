import type { Kysely } from 'kysely';
import type { Clock } from '../../application/ports/clock.js';
import type { EventStore } from '../../application/ports/event-store.js';
import { CheckpointClaims } from './checkpoint-claims.js';
import {
  dropGeneration,
  ensureGeneration,
  missingGeneration,
  obsoleteGenerations,
  readGeneration,
  readGenerations,
  recordFailure,
  resumeGeneration,
  retireGenerations,
  setUpGeneration,
  takeGeneration,
  type GenerationRef,
} from './projection-checkpoints.queries.js';
import { generationLockKey, type ProjectionLocks } from './projection-lock.js';
import type { Projection } from './projection.js';
import { ProjectorMetrics, type ProjectionStatus } from './projector-metrics.js';
import { sleep } from '../../application/sleep.js';
import { Projector, type ProjectionLogger, type ProjectorExit, type ProjectorSettings } from './projector.js';
import { isTransientDatabaseError } from './transient-errors.js';

export type ProjectionRuntimeOptions = {
  /** Over the pool shared with the read models; each batch borrows one connection for its transaction. */
  readonly db: Kysely<unknown>;
  readonly eventStore: EventStore;
  readonly locks: ProjectionLocks;
  readonly projections: readonly Projection[];
  readonly logger?: ProjectionLogger;
  readonly clock?: Clock;
  /** Default 500. */
  readonly batchSize?: number;
  /** Default 50 ms. */
  readonly batchMaxWaitMs?: number;
  /** Default 5. */
  readonly maxAttempts?: number;
  /** Default 200 ms, doubling per attempt up to `retryMaxDelayMs` (default 10 s). */
  readonly retryDelayMs?: number;
  readonly retryMaxDelayMs?: number;
  /**
   * How often each projection looks at its generations (a rebuild requested, one retired by a
   * swap elsewhere, a worker to restart after losing its lock). Default 1 s.
   */
  readonly controlIntervalMs?: number;
};

const silent: ProjectionLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

type Worker = { readonly metrics: ProjectorMetrics; readonly controller: AbortController; done?: Promise<void> };

type Context = {
  readonly db: Kysely<unknown>;
  readonly claims: CheckpointClaims;
  readonly eventStore: EventStore;
  readonly locks: ProjectionLocks;
  readonly logger: ProjectionLogger;
  readonly now: () => Date;
  readonly settings: ProjectorSettings;
  readonly controlIntervalMs: number;
};

/**
 * Runs every projection as its own loop with its own subscription, lock and transactions, so a
 * projection that fails, lags or rebuilds holds up no other. Each generation of a projection
 * (the active one, and a rebuild beside it) is written by whichever process holds its advisory
 * lock; the others wait in `standby` and take over when that process's lock session ends.
 */
export class ProjectionRuntime {
  private readonly controller = new AbortController();
  private readonly supervisors: ProjectionSupervisor[];
  private running: Promise<void> | undefined;

  constructor(options: ProjectionRuntimeOptions) {
    const names = options.projections.map((projection) => projection.name);
    const repeated = names.filter((name, index) => names.indexOf(name) !== index);
    if (repeated.length > 0) throw new RangeError(`Projections registered twice: ${repeated.join(', ')}`);
    const clock = options.clock;
    const context: Context = {
      db: options.db,
      claims: new CheckpointClaims(options.db),
      eventStore: options.eventStore,
      locks: options.locks,
      logger: options.logger ?? silent,
      now: clock ? () => clock.now() : () => new Date(),
      controlIntervalMs: options.controlIntervalMs ?? 1000,
      settings: {
        batchSize: options.batchSize ?? 500,
        batchMaxWaitMs: options.batchMaxWaitMs ?? 50,
        maxAttempts: options.maxAttempts ?? 5,
        retryDelayMs: options.retryDelayMs ?? 200,
        retryMaxDelayMs: options.retryMaxDelayMs ?? 10_000,
        idleMs: options.controlIntervalMs ?? 1000,
      },
    };
    this.supervisors = options.projections.map((projection) => new ProjectionSupervisor(projection, context));
  }

  start(): void {
    if (this.running) return;
    const signal = this.controller.signal;
    this.running = Promise.all(this.supervisors.map((supervisor) => supervisor.run(signal))).then(() => undefined);
  }

  /**
   * Stops every projector after the batch it is committing (an uncommitted one is simply read
   * again next time), then releases the locks so that a standby process takes over at once.
   */
  async stop(): Promise<void> {
    this.controller.abort();
    await this.running;
  }

  /** One entry per generation this process runs or waits for, by name then generation. */
  status(): ProjectionStatus[] {
    return this.supervisors
      .flatMap((supervisor) => supervisor.status())
      .sort((a, b) => a.name.localeCompare(b.name) || a.generation - b.generation);
  }

  /** Puts a `failed` projection back to work here (after fixing what its handler tripped on). */
  restart(name: string): void {
    for (const supervisor of this.supervisors) if (supervisor.name === name) supervisor.restartFailed();
  }
}

export function startProjectionRuntime(options: ProjectionRuntimeOptions): ProjectionRuntime {
  const runtime = new ProjectionRuntime(options);
  runtime.start();
  return runtime;
}

/** Keeps one worker per generation of one projection this process's code can build. */
class ProjectionSupervisor {
  private readonly workers = new Map<number, Worker>();

  constructor(
    private readonly projection: Projection,
    private readonly context: Context,
  ) {}

  get name(): string {
    return this.projection.name;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.reconcile(signal);
      } catch (error) {
        this.context.logger.warn({ projection: this.name, err: error }, 'Could not check the projection generations; trying again');
      }
      await sleep(this.context.controlIntervalMs, signal);
    }
    await Promise.all([...this.workers.values()].map((worker) => worker.done));
  }

  status(): ProjectionStatus[] {
    return [...this.workers.values()].map((worker) => worker.metrics.snapshot());
  }

  restartFailed(): void {
    for (const worker of this.workers.values()) if (worker.metrics.state === 'failed') worker.controller.abort();
  }

  private async reconcile(signal: AbortSignal): Promise<void> {
    const { db } = this.context;
    // Read first: the setup transaction (four statements a second per projection) is only
    // needed when it would create something, which it checks again under its lock.
    let rows = await readGenerations(db, this.name);
    if (missingGeneration(rows, this.projection.version)) {
      await ensureGeneration(db, this.name, this.projection.version);
      rows = await readGenerations(db, this.name);
    }
    // A rebuild of an older version left behind when a newer one went live (requested before the
    // deploy, say): it would never swap in, and once that version's code is gone nobody builds
    // it. Any process lets it go, or it would stand as the pending rebuild for good.
    const obsolete = obsoleteGenerations(rows);
    if (obsolete.length > 0) {
      await retireGenerations(db, this.name, obsolete);
      rows = await readGenerations(db, this.name);
    }
    const byGeneration = new Map(rows.map((row) => [row.generation, row]));
    for (const [generation, worker] of this.workers) {
      const row = byGeneration.get(generation);
      // An idle projector would not notice a swap until its next event; tell it now.
      if ((!row || row.status === 'retired') && worker.metrics.state !== 'standby') worker.controller.abort();
    }
    for (const row of rows) {
      if (this.workers.has(row.generation) || signal.aborted) continue;
      // Any process may clean up a retired generation; only this version's code may build one.
      if (row.status === 'retired' || row.version === this.projection.version) this.spawn(row.generation, row.version, signal);
    }
  }

  private spawn(generation: number, version: number, runtimeSignal: AbortSignal): void {
    const worker: Worker = {
      metrics: new ProjectorMetrics(this.name, generation, version, this.context.now),
      controller: new AbortController(),
    };
    const signal = AbortSignal.any([runtimeSignal, worker.controller.signal]);
    worker.done = this.work(generation, worker.metrics, signal)
      .catch((error: unknown) => {
        this.context.logger.error({ projection: this.name, generation, err: error }, 'Projection worker crashed; restarting it');
      })
      .finally(() => {
        worker.metrics.state = 'stopped';
        if (this.workers.get(generation) === worker) this.workers.delete(generation);
      });
    this.workers.set(generation, worker);
  }

  private async work(generation: number, metrics: ProjectorMetrics, signal: AbortSignal): Promise<void> {
    const { db, locks, logger } = this.context;
    const lockKey = generationLockKey(this.name, generation);
    const lock = await locks.acquire(lockKey, signal);
    if (!lock) return;
    const ref: GenerationRef = { name: this.name, generation, sessionKey: lock.sessionKey };
    const held = AbortSignal.any([signal, lock.lost]);
    logger.info({ projection: this.name, generation }, 'Projection lock acquired');
    try {
      const exit = await this.project(ref, metrics, held);
      if (lock.lost.aborted || exit === 'lost') return;
      const row = await readGeneration(db, this.name, generation);
      if (row?.status === 'retired') {
        await dropGeneration(db, ref);
        logger.info({ projection: this.name, generation }, 'Retired projection generation dropped');
      }
    } finally {
      if (lock.lost.aborted) logger.warn({ projection: this.name, generation }, 'Projection lock session lost; stopped writing');
      await lock.release();
    }
  }

  private async project(ref: GenerationRef, metrics: ProjectorMetrics, signal: AbortSignal): Promise<ProjectorExit> {
    const { db, now } = this.context;
    metrics.state = 'starting';
    const found = await readGeneration(db, ref.name, ref.generation);
    if (!found || found.status === 'retired') return 'retired';
    if (found.version !== this.projection.version) return 'stopped';
    if (found.status === 'failed') await resumeGeneration(db, ref, now());
    const setUp = found.schema_ready ? 'ready' : await this.setUp(ref, metrics, signal);
    const exit = setUp === 'ready' ? await this.runProjector(ref, metrics, signal) : setUp;
    // A failed generation keeps its lock: another process retrying it in turn would only fail
    // again and bury the recorded error. A restart, a deploy or a rebuild moves it on.
    if (exit === 'failed') await aborted(signal);
    return exit;
  }

  private async runProjector(ref: GenerationRef, metrics: ProjectorMetrics, signal: AbortSignal): Promise<ProjectorExit> {
    const row = await takeGeneration(this.context.db, ref.name, ref.generation);
    if (!row || row.status === 'retired') return 'retired';
    return new Projector({ ...this.context, projection: this.projection, ref, row, metrics }).run(signal);
  }

  /**
   * A `migrate` that throws is a failure like a handler's: recorded, visible, not retried in a
   * loop. A database error that passes (`isTransientDatabaseError`) is not its own: the setup is
   * tried again with doubling delays. Either way the row is read first: a COMMIT whose answer
   * was lost may have landed, and a generation set up (the first one live, its views published)
   * but recorded `failed` at the first event would serve empty read models as if complete.
   */
  private async setUp(ref: GenerationRef, metrics: ProjectorMetrics, signal: AbortSignal): Promise<'ready' | 'lost' | 'failed' | 'stopped'> {
    const { db, logger, now, settings } = this.context;
    for (let attempt = 1; !signal.aborted; attempt += 1) {
      try {
        return (await setUpGeneration(db, ref, (trx) => this.projection.migrate(trx))) ? 'ready' : 'lost';
      } catch (error) {
        const row = await readGeneration(db, ref.name, ref.generation).catch(() => undefined);
        if (row?.schema_ready) return 'ready';
        if (isTransientDatabaseError(error)) {
          const delayMs = Math.min(settings.retryDelayMs * 2 ** (attempt - 1), settings.retryMaxDelayMs);
          logger.warn({ projection: ref.name, generation: ref.generation, err: error, attempt, delayMs }, 'Projection setup failed on a passing database error; retrying');
          await sleep(delayMs, signal);
          continue;
        }
        const message = `setting up the generation failed: ${error instanceof Error ? error.message : String(error)}`;
        logger.error({ projection: ref.name, generation: ref.generation, err: error }, 'Projection stopped: its setup failed');
        metrics.failed({ message, eventType: null, position: null });
        metrics.state = 'failed';
        return (await recordFailure(db, ref, { at: now(), error: message })) ? 'failed' : 'lost';
      }
    }
    return 'stopped';
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
