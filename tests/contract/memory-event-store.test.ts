import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { describeEventStoreContract } from './event-store.contract.js';

describeEventStoreContract('MemoryEventStore', async () => {
  const store = new MemoryEventStore();
  return { store, teardown: () => store.close() };
});
