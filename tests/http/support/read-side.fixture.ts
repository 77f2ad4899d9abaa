import { pino, type Logger } from 'pino';
import { RevealingEventStore } from '../../../src/application/privacy/revealing-event-store.js';
import type { HttpServer } from '../../../src/infrastructure/http/http-server.js';
import { postgresProbe } from '../../../src/infrastructure/http/plugins/health.plugin.js';
import { buildQueryApi } from '../../../src/infrastructure/http/query-api.js';
import { PgEventStore } from '../../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createKysely } from '../../../src/infrastructure/postgres/database.js';
import { PgCheckpointListener } from '../../../src/infrastructure/projections/pg-checkpoint-listener.js';
import { readModelProjections } from '../../../src/projections/read-models.js';
import { createRuntime } from '../../projections/support/runtime-harness.js';
import { audience, issuer, secret, type TestApi, type TestBackend } from './command-api.fixture.js';

export type ReadSide = {
  /** The query API, with the command API's token settings; requests go through `inject`. */
  readonly queryApi: HttpServer;
  close(): Promise<void>;
};

export type ReadSideOptions = {
  /** `QueryApiDeps.isErased`; unset, none. */
  readonly isErased?: (subjectId: string) => boolean;
  /** False: the query API alone, over read models another read side's projectors keep. Default true. */
  readonly projectors?: boolean;
};

/**
 * The other half of an end-to-end test beside `startApi`: every read model's projector on the
 * same database (reading the log through the command side's vault, as the service does) and the
 * query API over them.
 */
export async function startReadSide(
  backend: TestBackend,
  api: Pick<TestApi, 'clock' | 'vault'>,
  logger: Logger = pino({ level: 'silent' }),
  options: ReadSideOptions = {},
): Promise<ReadSide> {
  const projectorStore = new PgEventStore(backend.pool, { pollIntervalMs: 100 });
  const db = createKysely<unknown>(backend.pool);
  const projectors =
    options.projectors === false
      ? undefined
      : createRuntime({ url: backend.database.url, db, revealed: new RevealingEventStore(projectorStore, api.vault) }, readModelProjections, {
          batchMaxWaitMs: 5,
        });
  projectors?.start();
  const listener = new PgCheckpointListener({ connectionString: backend.database.url, reconnectMs: 100 });
  await listener.start();
  const queryApi = await buildQueryApi({
    logger,
    clock: api.clock,
    secret,
    issuer,
    audience,
    corsOrigins: [],
    rateLimitMax: 100_000,
    pool: backend.pool,
    events: backend.eventStore,
    personalData: api.vault,
    notifications: listener,
    consistencyTimeoutMs: 10_000,
    probes: [postgresProbe(backend.pool)],
    ...(options.isErased ? { isErased: options.isErased } : {}),
  });
  await queryApi.ready();
  return {
    queryApi,
    async close() {
      await queryApi.close();
      await listener.close();
      await projectors?.stop();
      await projectorStore.close();
    },
  };
}
