import path from 'node:path';
import type pg from 'pg';
import type { EventReader } from '../../application/audit/stream-history.js';
import { PersonalDataVault } from '../../application/privacy/personal-data-vault.js';
import { RevealingEventStore } from '../../application/privacy/revealing-event-store.js';
import type { Config } from '../config/config.js';
import { loadMasterKey } from '../privacy/master-key.js';
import { PgSubjectKeyStore } from '../privacy/pg-subject-key-store.js';
import { createLogger } from '../logging/logger.js';
import { createPool } from '../postgres/database.js';
import { startEmbeddedPostgres } from '../postgres/embedded-postgres.js';
import { createEventStore } from '../storage.js';

export type AuditCliStorage = {
  /** Personal fields revealed, or `[erased]`: for replay. */
  readonly events: EventReader;
  /** As stored, sealed: what the hash chains cover. */
  readonly storedEvents: EventReader;
  /** The PostgreSQL holding the access log (and the events, unless they are in EventStoreDB). */
  readonly pool: pg.Pool;
  close(): Promise<void>;
};

/**
 * What the audit command-line tools read: the service's stores as `npm start` would open them
 * (`DATABASE_URL`, else the embedded PostgreSQL under `DATA_DIR`, which must then not be running
 * already; `EVENTSTORE_URL` for the events). Read only: nothing here migrates or appends.
 */
export async function openAuditCliStorage(config: Config): Promise<AuditCliStorage> {
  const embedded = config.DATABASE_URL
    ? undefined
    : await startEmbeddedPostgres({ dataDir: path.join(config.DATA_DIR, 'postgres'), port: config.EMBEDDED_POSTGRES_PORT, persistent: true });
  // `bookable`: the database main.ts creates on the embedded server.
  const url = embedded ? embedded.urlFor('bookable') : config.DATABASE_URL;
  if (url === undefined) throw new Error('no database');
  const pool = createPool(url, 2);
  // The event store `npm start` would use; its notes (a stalled horizon) go to stderr, not into the output.
  const store = await createEventStore(config, pool, createLogger({ level: 'warn', stderr: true }));
  const vault = new PersonalDataVault(new PgSubjectKeyStore(pool, await loadMasterKey(config)));
  return {
    events: new RevealingEventStore(store, vault),
    storedEvents: store,
    pool,
    async close() {
      await store.close();
      await pool.end();
      await embedded?.stop();
    },
  };
}
