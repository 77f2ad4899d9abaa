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

  const paymentSucceeded = { type: 'PaymentSucceeded', streamId: 'payment-1', revision: 0n, position: { commit: 10n, prepare: 10n } };

  /**
   * A store whose subscription call answers one event, then either ends (as the client's does when
   * the server closes the stream with an OK status: shutting down, a leader change) or waits for more.
   */
  function storeWhoseSubscription(then: 'ends' | 'waits') {
    const client = EventStoreDBClient.connectionString('esdb://127.0.0.1:2113?tls=false');
    const resolved = { event: { ...paymentSucceeded, id: randomUUID(), data: {}, metadata: {}, isJson: true, created: new Date(0) } };
    Object.assign(client, {
      subscribeToAll: () => ({
        [Symbol.asyncIterator]: async function* () {
          yield resolved;
          if (then === 'waits') await new Promise(() => {});
        },
        unsubscribe: async () => undefined,
        destroy: () => undefined,
      }),
    });
    return new EsdbEventStore(client);
  }

  it('fails a subscription the server ended although its signal did not abort: a caller must not take the end for a stop', async () => {
    const store = storeWhoseSubscription('ends');
    const seen: string[] = [];

    const following = (async () => {
      for await (const event of store.subscribeToAll({ signal: new AbortController().signal })) seen.push(event.type);
    })();

    await expect(following).rejects.toThrow('EventStoreDB ended the subscription to $all unasked');
    expect(seen).toEqual(['PaymentSucceeded']);
  });

  it('ends a subscription without error when its signal aborts', async () => {
    const store = storeWhoseSubscription('waits');
    const stop = new AbortController();
    const seen: string[] = [];

    const following = (async () => {
      for await (const event of store.subscribeToAll({ signal: stop.signal })) {
        seen.push(event.type);
        // Later, while the subscription waits on the server for the next event.
        setTimeout(() => stop.abort(), 10);
      }
    })();

    await expect(following).resolves.toBeUndefined();
    expect(seen).toEqual(['PaymentSucceeded']);
  });
});
