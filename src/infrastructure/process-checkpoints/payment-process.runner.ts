import type pg from 'pg';
import type { CommandSide } from '../../application/command-handlers.js';
import type { EventStore } from '../../application/ports/event-store.js';
import type { PaymentGateway } from '../../application/ports/payment-gateway.js';
import { PaymentProcess } from '../../application/process-managers/payment.process.js';
import type { Logger } from '../logging/logger.js';
import type { ProcessManagerObserver } from '../metrics/process-manager-metrics.js';
import { createKysely } from '../postgres/database.js';
import { PgProcessCheckpoints, type ProcessCheckpointTables } from './pg-process-checkpoints.js';

export type PaymentProcessRunnerDeps = {
  readonly eventStore: EventStore;
  readonly side: CommandSide;
  readonly gateway: PaymentGateway;
  readonly pool: pg.Pool;
  readonly logger: Logger;
  readonly observer?: ProcessManagerObserver;
};

/** Runs the payment process manager until the returned function stops it. */
export function startPaymentProcess(deps: PaymentProcessRunnerDeps): () => Promise<void> {
  const log = deps.logger.child({ component: 'payment-process' });
  const process = new PaymentProcess({
    eventStore: deps.eventStore,
    side: deps.side,
    gateway: deps.gateway,
    checkpoints: new PgProcessCheckpoints(createKysely<ProcessCheckpointTables>(deps.pool)),
    onError: (err, what, retried) => {
      log.warn({ err }, `could not ${what}`);
      deps.observer?.error(retried);
    },
    onAttempt: (succeeded) => deps.observer?.attempt(succeeded),
  });
  const stop = new AbortController();
  const running = process.run(stop.signal).catch((err: unknown) => log.error({ err }, 'payment process stopped'));
  log.info({ gateway: deps.gateway.name }, 'payment process started');
  return async () => {
    stop.abort();
    await running;
  };
}
