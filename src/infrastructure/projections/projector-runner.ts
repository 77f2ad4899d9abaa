import type pg from 'pg';
import type { EventStore } from '../../application/ports/event-store.js';
import { ProjectionRuntime } from '../../projections/runtime/projection-runtime.js';
import type { Projection } from '../../projections/runtime/projection.js';
import type { Config } from '../config/config.js';
import type { Logger } from '../logging/logger.js';
import { createKysely } from '../postgres/database.js';
import { PgAdvisoryLocks } from './pg-advisory-locks.js';

export type ProjectorRunnerOptions = {
  readonly config: Pick<
    Config,
    'PROJECTION_BATCH_SIZE' | 'PROJECTION_BATCH_MAX_WAIT_MS' | 'PROJECTION_MAX_ATTEMPTS' | 'PROJECTION_RETRY_DELAY_MS' | 'PROJECTION_LOCK_RETRY_MS'
  >;
  /** The read-model database; lock sessions open their own connections to it. */
  readonly connectionString: string;
  /** Pool for the batch transactions (the read models' pool). */
  readonly pool: pg.Pool;
  readonly eventStore: EventStore;
  readonly logger: Logger;
  /** Every read model to build, e.g. `readModelProjections` from `src/projections/read-models.ts`. */
  readonly projections: readonly Projection[];
};

/**
 * The projector role: starts the runtime over the read models. Stop it with `runtime.stop()`
 * before closing the pool and the event store, so that the batches in flight commit first.
 * Run as many processes as you like: each projection is written by one of them at a time.
 */
export function startProjectors(options: ProjectorRunnerOptions): ProjectionRuntime {
  const { config, logger } = options;
  const log = logger.child({ component: 'projector' });
  const runtime = new ProjectionRuntime({
    db: createKysely<unknown>(options.pool),
    eventStore: options.eventStore,
    locks: new PgAdvisoryLocks({
      connectionString: options.connectionString,
      retryMs: config.PROJECTION_LOCK_RETRY_MS,
      onError: (error) => log.warn({ err: error }, 'Projection lock session problem; retrying'),
    }),
    projections: options.projections,
    logger: log,
    batchSize: config.PROJECTION_BATCH_SIZE,
    batchMaxWaitMs: config.PROJECTION_BATCH_MAX_WAIT_MS,
    maxAttempts: config.PROJECTION_MAX_ATTEMPTS,
    retryDelayMs: config.PROJECTION_RETRY_DELAY_MS,
    controlIntervalMs: config.PROJECTION_LOCK_RETRY_MS,
  });
  runtime.start();
  return runtime;
}
