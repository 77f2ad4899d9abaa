import { randomUUID } from 'node:crypto';
import { EventStoreDBClient } from '@eventstore/db-client';
import { describe, expect, it } from 'vitest';
import { ConcurrencyError } from '../../src/application/ports/event-store.js';
import { EsdbEventStore } from '../../src/infrastructure/esdb-event-store/esdb-event-store.js';

/**
 * What the adapter makes of the client's answers where no server is needed to get them (no
 * EventStoreDB runs here; the contract suite runs against one when EVENTSTORE_URL is set).
 */
describe("EsdbEventStore, given the client's answers", () => {
  it('refuses an append the server refused although the client did not throw (a client made with throwOnAppendFailure=false)', async () => {
    // No connection is made until a call; the two calls the append makes answer as the client does in that mode.
    const client = EventStoreDBClient.connectionString('esdb://127.0.0.1:2113?tls=false&throwOnAppendFailure=false');
    Object.assign(client, {
      readStream: () => (async function* () {})(),
      appendToStream: async () => ({ success: false, nextExpectedRevision: 7n, position: undefined }),
    });
    const store = new EsdbEventStore(client);

    const append = store.appendToStream('booking-1', [{ id: randomUUID(), type: 'BookingPaid', data: {}, metadata: {} }], { expectedRevision: 2 });

    await expect(append).rejects.toBeInstanceOf(ConcurrencyError);
    await expect(append).rejects.toMatchObject({ streamId: 'booking-1', expected: 2, actual: 7 });
  });
});
