import { describe, expect, it } from 'vitest';
import { EsdbEventStore } from '../../src/infrastructure/esdb-event-store/esdb-event-store.js';
import { describeEventStoreContract } from './event-store.contract.js';

// No EventStoreDB server is started for the tests: the contract runs only against one that is
// already there (see "EventStoreDB" in the README).
const url = process.env.EVENTSTORE_URL;

describe('EsdbEventStore', () => {
  it('is built from a connection string without connecting', async () => {
    const store = EsdbEventStore.fromConnectionString('esdb://localhost:2113?tls=false');

    await expect(store.close()).resolves.toBeUndefined();
  });
});

if (url) {
  describeEventStoreContract('EsdbEventStore', async () => {
    const store = EsdbEventStore.fromConnectionString(url);
    return { store, teardown: () => store.close() };
  });
}
