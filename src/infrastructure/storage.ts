import path from 'node:path';
import pg from 'pg';
import type { EventStore } from '../application/ports/event-store.js';
import { PersonalDataVault } from '../application/privacy/personal-data-vault.js';
import { RevealingEventStore } from '../application/privacy/revealing-event-store.js';
import { CommandFailed } from './config/command-line.js';
import { ConfigError, type Config } from './config/config.js';
import { claimEventLog, type EventLogClaim } from './event-log-identity/event-log-identity.js';
import { assertTablesInPublic } from './postgres/search-path.js';
import type { Logger } from './logging/logger.js';
import { PgEventStore } from './pg-event-store/pg-event-store.js';
import { openMasterKey, type MasterKeyring } from './privacy/master-key.js';
import { PgSubjectKeyStore } from './privacy/pg-subject-key-store.js';
import { createPool, migrateToLatest } from './postgres/database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './postgres/embedded-postgres.js';

/** The database the service uses on the embedded server. */
const embeddedDatabase = 'bookable';

/** PostgreSQL log lines kept for the error when it does not start ("lock file … already exists"). */
const keptLogLines = 10;

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

/**
 * `DATABASE_URL`, or an embedded PostgreSQL under `DATA_DIR` that keeps its data between runs.
 * `share`: a server another process runs there is used (a CLI's), not an error (`npm start`'s).
 */
export async function openDatabase(config: Config, logger: Logger, options: { share?: boolean } = {}): Promise<{ url: string; stop(): Promise<void> }> {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL, stop: async () => undefined };
  const dataDir = path.join(config.DATA_DIR, 'postgres');
  // The library rejects with no reason when the server exits early: the reason is in its log.
  const lastLines: string[] = [];
  let server: EmbeddedDatabase;
  try {
    server = await startEmbeddedPostgres({
      dataDir,
      port: config.EMBEDDED_POSTGRES_PORT,
      persistent: true,
      share: options.share === true,
      onLog: (text) => {
        for (const line of text.split('\n').map((part) => part.trim()).filter((part) => part.length > 0)) {
          logger.debug({ postgres: line });
          lastLines.push(line);
          if (lastLines.length > keptLogLines) lastLines.shift();
        }
      },
    });
  } catch (error) {
    // A refusal to start says all there is: no server ran, so no log line explains it.
    if (error instanceof ConfigError || error instanceof CommandFailed) throw error;
    const lines = error instanceof Error ? [error.message, ...lastLines] : lastLines;
    throw new Error(`embedded PostgreSQL in ${dataDir} did not start:\n${lines.join('\n')}`, { cause: error });
  }
  try {
    await createEmbeddedDatabase(server.adminUrl);
  } catch (error) {
    await server.stop();
    throw error;
  }
  if (server.shared) logger.info({ dataDir }, 'using the embedded PostgreSQL another process runs; it keeps running after this one');
  else logger.info({ dataDir }, 'embedded PostgreSQL started');
  return { url: server.urlFor(embeddedDatabase), stop: () => server.stop() };
}

async function createEmbeddedDatabase(adminUrl: string): Promise<void> {
  const admin = new pg.Client(adminUrl);
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [embeddedDatabase]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${embeddedDatabase}`);
  } finally {
    await admin.end();
  }
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

/**
 * The database (embedded unless `DATABASE_URL`), migrated unless told not to, and the event store.
 * `claimEventLog`: `claim` for a process that resumes checkpoints (projectors, process managers),
 * which records the event log they come from when none is; anything else only checks (see
 * `EventLogClaim`). `readOnly`: a tool that only reads (the audit CLIs), which never writes a
 * master-key file (`openMasterKey`).
 */
export async function openStorage(
  config: Config,
  logger: Logger,
  applicationName?: string,
  options: { share?: boolean; claimEventLog?: EventLogClaim; readOnly?: boolean } = {},
): Promise<Storage> {
  const database = await openDatabase(config, logger, options);
  const pool = createPool(database.url, config.DATABASE_POOL_SIZE, applicationName);
  let keyring: MasterKeyring | undefined;
  let eventStore: EventStore;
  try {
    if (config.RUN_MIGRATIONS) {
      const { newer } = await migrateToLatest(pool);
      if (newer.length > 0) logger.info({ newer }, 'the schema has migrations of a newer release; this one runs on it unchanged');
    } else await assertTablesInPublic(pool);
    // Before anything is written: a key that did not wrap the stored ones, or is not the claimed one, is refused here.
    const masterKeys = await openMasterKey(config, pool, options.readOnly === true ? 'read-only' : 'generate-when-fresh');
    if (masterKeys.schemaBehind) logger.warn('the schema lacks master_key_claim (migration 0740): which master key wraps new data keys is not claimed until the migrations run');
    keyring = masterKeys.keyring;
    // Before anything reads a checkpoint: one taken from the other store's log is refused here.
    if ((await claimEventLog(pool, config.EVENTSTORE_URL ? 'eventstoredb' : 'postgres', options.claimEventLog ?? 'check')) === 'schema-behind') {
      logger.warn('the schema lacks event_log_identity (migration 0690): which event log the checkpoints came from is not checked until the migrations run');
    }
    // Last: once it is open nothing here can fail, so no failure leaves it open.
    eventStore = await createEventStore(config, pool, logger);
  } catch (error) {
    // The pool and the embedded server would keep the process alive after the error.
    await pool.end();
    await database.stop();
    throw error;
  }
  const vault = new PersonalDataVault(new PgSubjectKeyStore(pool, keyring?.current, keyring?.previous));
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
