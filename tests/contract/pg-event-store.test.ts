import { createPool, migrateToLatest } from '../../src/infrastructure/postgres/database.js';
import { PgEventStore } from '../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createTestDatabase } from '../support/database.js';
import { describeEventStoreContract } from './event-store.contract.js';

describeEventStoreContract('PgEventStore', async () => {
  const database = await createTestDatabase();
  const pool = createPool(database.url, 20);
  await migrateToLatest(pool);
  // A small page makes the suite's reads cross page boundaries, where paging bugs live.
  const store = new PgEventStore(pool, { pageSize: 50, closePool: true });
  return {
    store,
    async teardown() {
      await store.close();
      await database.drop();
    },
  };
});
