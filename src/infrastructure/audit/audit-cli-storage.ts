import type pg from 'pg';
import type { EventReader } from '../../application/audit/stream-history.js';
import type { EventStore } from '../../application/ports/event-store.js';
import { revealingForAudit } from '../../application/audit/unreadable-events.js';
import type { Config } from '../config/config.js';
import { createLogger } from '../logging/logger.js';
import { openStorage } from '../storage.js';

export type AuditCliStorage = {
  /** Personal fields revealed, `[erased]` or `[unreadable]`, as the audit API reads them: for replay. */
  readonly events: EventReader;
  /** As stored, sealed: what the hash chains cover; `committedVisible` where the store holds commits back. */
  readonly storedEvents: EventReader & Pick<EventStore, 'committedVisible'>;
  /** The PostgreSQL holding the access log (and the events, unless they are in EventStoreDB). */
  readonly pool: pg.Pool;
  close(): Promise<void>;
};

/**
 * What the audit command-line tools read: the service's stores opened as `npm start` opens them
 * (`DATABASE_URL`, else the embedded PostgreSQL under `DATA_DIR`; `EVENTSTORE_URL` for the
 * events), without migrating. Like the other CLIs they share an embedded server `npm start` runs
 * there, and leave it running: they end before it. Read only: nothing here appends, and no
 * master-key file is written (`openMasterKey`).
 * Log lines (a stalled horizon) go to stderr, so that the tools' output is only their result.
 */
export async function openAuditCliStorage(config: Config): Promise<AuditCliStorage> {
  const storage = await openStorage({ ...config, RUN_MIGRATIONS: false, DATABASE_POOL_SIZE: 2 }, createLogger({ level: 'warn', stderr: true }), undefined, {
    share: true,
    readOnly: true,
  });
  return { events: revealingForAudit(storage.eventStore, storage.vault), storedEvents: storage.eventStore, pool: storage.pool, close: () => storage.stop() };
}
