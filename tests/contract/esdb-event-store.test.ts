import { randomUUID } from 'node:crypto';
import { EventStoreDBClient } from '@eventstore/db-client';
import { describe, expect, it } from 'vitest';
import { StreamDeletedError } from '../../src/application/ports/event-store.js';
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

if (url) {
  describe('EsdbEventStore, given a stream deleted for good (tombstoned)', () => {
    it('refuses to read it or to append to it with StreamDeletedError, and never recreates it', async () => {
      const client = EventStoreDBClient.connectionString(url);
      const store = new EsdbEventStore(client);
      const streamId = `booking-${randomUUID()}`;
      const event = () => ({ id: randomUUID(), type: 'BookingRequested', data: {}, metadata: {} });
      try {
        await store.appendToStream(streamId, [event()], { expectedRevision: 'no_stream' });
        await client.tombstoneStream(streamId);

        await expect(store.readStream(streamId)).rejects.toBeInstanceOf(StreamDeletedError);
        await expect(store.appendToStream(streamId, [event()], { expectedRevision: 'no_stream' })).rejects.toBeInstanceOf(StreamDeletedError);
        await expect(store.appendToStream(streamId, [event()])).rejects.toBeInstanceOf(StreamDeletedError);
      } finally {
        await store.close();
      }
    });
  });
}
