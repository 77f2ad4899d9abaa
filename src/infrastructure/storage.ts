import path from 'node:path';
import pg from 'pg';
import type { EventStore } from '../application/ports/event-store.js';
import { PersonalDataVault } from '../application/privacy/personal-data-vault.js';
import { RevealingEventStore } from '../application/privacy/revealing-event-store.js';
import type { Config } from './config/config.js';
import type { Logger } from './logging/logger.js';
import { PgEventStore } from './pg-event-store/pg-event-store.js';
import { loadMasterKey } from './privacy/master-key.js';
import { PgSubjectKeyStore } from './privacy/pg-subject-key-store.js';
import { createPool, migrateToLatest } from './postgres/database.js';
import { startEmbeddedPostgres } from './postgres/embedded-postgres.js';

/** The database the service uses on the embedded server. */
const embeddedDatabase = 'bookable';

/** Where the service keeps its events and read models, opened once per process (or thread). */
export type Storage = {
  readonly url: string;
  readonly pool: pg.Pool;
  /** As stored: for the command loop, which seals and hashes what it appends. */
  readonly eventStore: EventStore;
  /** Personal fields revealed (or `[erased]`): for every other reader. */
  readonly revealed: EventStore;
  readonly vault: PersonalDataVault;
  stop(): Promise<void>;
};

/** `DATABASE_URL`, or an embedded PostgreSQL under `DATA_DIR` that keeps its data between runs. */
export async function openDatabase(config: Config, logger: Logger): Promise<{ url: string; stop(): Promise<void> }> {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL, stop: async () => undefined };
  const dataDir = path.join(config.DATA_DIR, 'postgres');
  const server = await startEmbeddedPostgres({
    dataDir,
    port: config.EMBEDDED_POSTGRES_PORT,
    persistent: true,
    onLog: (line) => logger.debug({ postgres: line.trim() }),
  });
  const admin = new pg.Client(server.adminUrl);
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [embeddedDatabase]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${embeddedDatabase}`);
  } finally {
    await admin.end();
  }
  logger.info({ dataDir }, 'embedded PostgreSQL started');
  return { url: server.urlFor(embeddedDatabase), stop: () => server.stop() };
}

/**
 * EventStoreDB when `EVENTSTORE_URL` names one, else the PostgreSQL event store beside the read
 * models. The EventStoreDB client (gRPC) is loaded only then: it is most of a thread's memory.
 */
async function createEventStore(config: Config, pool: pg.Pool, logger: Logger): Promise<EventStore> {
  if (config.EVENTSTORE_URL) {
    logger.info('events go to EventStoreDB');
    const { EsdbEventStore } = await import('./esdb-event-store/esdb-event-store.js');
    return EsdbEventStore.fromConnectionString(config.EVENTSTORE_URL);
  }
  return new PgEventStore(pool, {
    onStall: ({ heldForMs, holder }) => logger.warn({ heldForMs, holder }, 'event subscribers held back by an open transaction'),
  });
}

/** The database (embedded unless `DATABASE_URL`), migrated unless told not to, and the event store. */
export async function openStorage(config: Config, logger: Logger, applicationName?: string): Promise<Storage> {
  const database = await openDatabase(config, logger);
  const pool = createPool(database.url, config.DATABASE_POOL_SIZE, applicationName);
  if (config.RUN_MIGRATIONS) await migrateToLatest(pool);
  const eventStore = await createEventStore(config, pool, logger);
  const vault = new PersonalDataVault(new PgSubjectKeyStore(pool, await loadMasterKey(config)));
  return {
    url: database.url,
    pool,
    eventStore,
    revealed: new RevealingEventStore(eventStore, vault),
    vault,
    async stop() {
      await eventStore.close();
      await pool.end();
      await database.stop();
    },
  };
}
