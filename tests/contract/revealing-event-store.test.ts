import { RevealingEventStore } from '../../src/application/privacy/revealing-event-store.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { memoryVault } from '../support/personal-data.js';
import { describeEventStoreContract } from './event-store.contract.js';

// Every reader but the command loop sees the log through this decorator: it must keep every
// promise of the port (order, catch-up then live, aborts) while it reveals personal fields.
describeEventStoreContract('RevealingEventStore over MemoryEventStore', async () => {
  const stored = new MemoryEventStore();
  const store = new RevealingEventStore(stored, memoryVault());
  return { store, teardown: () => store.close() };
});
