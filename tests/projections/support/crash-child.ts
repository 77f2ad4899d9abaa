// Run by crash.test.ts as a separate process (`node --import tsx`), which the test kills with
// SIGKILL in the middle of its batches: no shutdown code gets to run.
import { PgEventStore } from '../../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createKysely, createPool } from '../../../src/infrastructure/postgres/database.js';
import { PgAdvisoryLocks } from '../../../src/infrastructure/projections/pg-advisory-locks.js';
import { eventCountsProjection } from '../../../src/projections/event-counts/event-counts.projection.js';
import { startProjectionRuntime } from '../../../src/projections/runtime/projection-runtime.js';
import { sleep } from '../../../src/application/sleep.js';

const [url, name] = process.argv.slice(2);
if (!url || !name) throw new Error('usage: crash-child.ts <database url> <projection name>');

const pool = createPool(url, 5);
const runtime = startProjectionRuntime({
  db: createKysely<unknown>(pool),
  eventStore: new PgEventStore(pool, { pollIntervalMs: 100 }),
  locks: new PgAdvisoryLocks({ connectionString: url, retryMs: 100 }),
  projections: [
    eventCountsProjection({
      name,
      eventTypes: ['Counted'],
      // Slow enough that the kill lands inside a batch's transaction most of the time.
      afterApply: () => sleep(15),
    }),
  ],
  batchSize: 40,
  batchMaxWaitMs: 20,
  controlIntervalMs: 100,
});
process.stdout.write('started\n');
process.on('SIGTERM', () => void runtime.stop().then(() => process.exit(0)));
