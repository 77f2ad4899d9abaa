import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  BACKWARDS,
  EventStoreDBClient,
  StreamDeletedError as EsdbStreamDeletedError,
  type AppendToStreamOptions,
  type EventData,
  type ReadStreamOptions,
} from '@eventstore/db-client';
import shared from '@eventstore/db-client/generated/shared_pb.js';
import streams from '@eventstore/db-client/generated/streams_pb.js';
import { describe, expect, it } from 'vitest';
import { ConcurrencyError, StreamDeletedError } from '../../src/application/ports/event-store.js';
import { sleep } from '../../src/application/sleep.js';
import { EsdbEventStore } from '../../src/infrastructure/esdb-event-store/esdb-event-store.js';
import { eventually } from '../support/eventually.js';

/**
 * What the adapter makes of the client's answers where no server is needed to get them (no
 * EventStoreDB runs here; the contract suite runs against one when EVENTSTORE_URL is set).
 * Subscriptions are the client's own: only the gRPC call under them is made up.
 */
describe("EsdbEventStore, given the client's answers", () => {
  it('refuses an append the server refused although the client did not throw, with the revision the stream is at (a client made with throwOnAppendFailure=false)', async () => {
    const client = EventStoreDBClient.connectionString('esdb://127.0.0.1:2113?tls=false&throwOnAppendFailure=false');
    const stream = Array.from({ length: 8 }, (_, revision) => storedEvent('booking-1', revision));
    Object.assign(client, {
      readStream: (_streamId: string, options: ReadStreamOptions = {}) => {
        const events = options.direction === BACKWARDS ? [...stream].reverse() : stream;
        return Readable.from(events.slice(0, Number(options.maxCount ?? events.length)).map((event) => ({ event })));
      },
      // Servers from 22.6 take appends in batches, and for those the client answers a refusal
      // with `BigInt(hasCurrentStreamRevision())`: 1 for any stream that exists.
      appendToStream: async () => ({ success: false, nextExpectedRevision: 1n, position: undefined }),
    });
    const store = new EsdbEventStore(client);

    const append = store.appendToStream('booking-1', [{ id: randomUUID(), type: 'BookingPaid', data: {}, metadata: {} }], { expectedRevision: 2 });

    await expect(append).rejects.toBeInstanceOf(ConcurrencyError);
    await expect(append).rejects.toMatchObject({ streamId: 'booking-1', expected: 2, actual: 7 });
  });

  it('fails a subscription the server ended although its signal did not abort: a caller must not take the end for a stop', async () => {
    const store = new EsdbEventStore(clientWhoseSubscriptionReads(new SubscriptionCall([serverSends(0)], 'ends')));
    const seen: string[] = [];

    const following = (async () => {
      for await (const event of store.subscribeToAll({ signal: new AbortController().signal })) seen.push(event.type);
    })();

    await expect(following).rejects.toThrow('EventStoreDB ended the subscription to $all unasked');
    expect(seen).toEqual(['PaymentSucceeded']);
  });

  it('ends a subscription without error when its signal aborts, and cancels its call', async () => {
    const call = new SubscriptionCall([serverSends(0)], 'waits');
    const store = new EsdbEventStore(clientWhoseSubscriptionReads(call));
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
    await eventually(async () => call.cancelled, 1_000, 'the call to be cancelled');
  });

  it('ends a subscription promptly when its signal aborts while the client is still discovering the cluster', async () => {
    // With `esdb+discover://` the call, and so the client's `unsubscribe`, waits for discovery:
    // up to minutes while no node answers.
    const client = EventStoreDBClient.connectionString('esdb+discover://127.0.0.1:2113?tls=false');
    let failDiscovery: (error: Error) => void = () => {};
    Object.assign(client, { getGRPCClient: () => new Promise((_, reject) => (failDiscovery = reject)) });
    const stop = new AbortController();

    const following = (async () => {
      for await (const event of new EsdbEventStore(client).subscribeToAll({ signal: stop.signal })) expect.fail(`no event was sent, got ${event.type}`);
    })();
    setTimeout(() => stop.abort(), 10);

    expect(await Promise.race([following.then(() => 'ended'), sleep(1_000).then(() => 'still waiting')])).toBe('ended');
    // A discovery that fails afterwards is no one's error: an unhandled one would fail this file.
    failDiscovery(new Error('No node could be discovered'));
    await sleep(10);
  });

  it('lets go of each event it delivered, however long the subscription runs', async () => {
    const delivered = 10_000;
    const events = Array.from({ length: delivered }, (_, n) => serverSends(n));
    const store = new EsdbEventStore(clientWhoseSubscriptionReads(new SubscriptionCall(events, 'waits')));
    const stop = new AbortController();
    const seen: WeakRef<object>[] = [];
    let stillHeld = Number.NaN;

    for await (const event of store.subscribeToAll({ signal: stop.signal })) {
      seen.push(new WeakRef(event.data));
      if (seen.length === delivered) {
        // Before the abort: memory held until then is held for as long as the process follows.
        stillHeld = await countReachable(seen);
        stop.abort();
      }
    }

    // The one in hand, perhaps another in the stream's own bookkeeping: not one per event.
    expect(stillHeld).toBeLessThan(10);
  });

  it("answers a read of a system (`$`) stream as of a stream that does not exist, however the server would answer it", async () => {
    const client = EventStoreDBClient.connectionString('esdb://127.0.0.1:2113?tls=false');
    const asked: string[] = [];
    Object.assign(client, {
      // The server holds `$user-admin` (a password hash and salt) and would hand it to an admin.
      readStream: (streamId: string) => {
        asked.push(streamId);
        return Readable.from([{ event: { ...storedEvent(streamId, 0), type: '$UserCreated', data: { hash: 'secret', salt: 'pepper' } } }]);
      },
    });
    const store = new EsdbEventStore(client);

    expect(await store.readStream('$user-admin')).toEqual({ status: 'no_stream' });
    expect(await store.readStream('$ce-booking', { direction: 'backwards', maxCount: 1 })).toEqual({ status: 'no_stream' });
    expect(asked).toEqual([]);
    // Our own streams are read as ever.
    expect(await store.readStream('booking-1')).toMatchObject({ status: 'found' });
  });

  it('asks the leader for every append and every stream read, so a read right after an acknowledged append sees it (a follower may lag behind)', async () => {
    const { client, asked } = recordingClient();
    const store = new EsdbEventStore(client);

    await store.appendToStream('booking-1', [newEvent()], { expectedRevision: 'no_stream' });
    await expect(store.appendToStream('booking-1', [newEvent()], { expectedRevision: 5 })).rejects.toBeInstanceOf(ConcurrencyError);
    await store.readStream('booking-1');

    // The duplicate look, the append and the read of its position; the refused append's three; the read.
    expect(asked.map(({ call }) => call)).toEqual(['readStream', 'appendToStream', 'readStream', 'readStream', 'appendToStream', 'readStream', 'readStream']);
    expect(asked.filter(({ requiresLeader }) => requiresLeader !== true)).toEqual([]);
  });

  it('refuses a read of a deleted (tombstoned) stream with StreamDeletedError, never answering no_stream', async () => {
    const store = new EsdbEventStore(clientWhoseStreamsAreDeleted());

    const read = store.readStream('booking-1');

    await expect(read).rejects.toBeInstanceOf(StreamDeletedError);
    await expect(read).rejects.toMatchObject({ streamId: 'booking-1', code: 'stream-deleted' });
  });

  it('refuses an append to a deleted stream with StreamDeletedError, recreating nothing', async () => {
    const client = clientWhoseStreamsAreDeleted();
    const store = new EsdbEventStore(client);

    const append = store.appendToStream('booking-1', [newEvent()], { expectedRevision: 'no_stream' });

    await expect(append).rejects.toBeInstanceOf(StreamDeletedError);
    expect(client.appended).toBe(0);
  });

  it('refuses an append the server refused because the stream was deleted meanwhile with StreamDeletedError', async () => {
    const client = EventStoreDBClient.connectionString('esdb://127.0.0.1:2113?tls=false');
    Object.assign(client, {
      readStream: () => Readable.from([]),
      appendToStream: async (streamId: string) => Promise.reject(EsdbStreamDeletedError.fromStreamName(streamId)),
    });
    const store = new EsdbEventStore(client);

    await expect(store.appendToStream('booking-1', [newEvent()])).rejects.toBeInstanceOf(StreamDeletedError);
  });

  it('does not refuse an append the server took when the stream is deleted before its read back: the events are written, the outcome unknown', async () => {
    // Given a server that takes the append, and the stream tombstoned right after (its reads now fail),
    let appended = false;
    const deleted = clientWhoseStreamsAreDeleted();
    const client = EventStoreDBClient.connectionString('esdb://127.0.0.1:2113?tls=false');
    Object.assign(client, {
      readStream: (streamId: string, options: ReadStreamOptions) => (appended ? deleted.readStream(streamId, options) : Readable.from([])),
      appendToStream: async () => {
        appended = true;
        return { success: true, nextExpectedRevision: 0n, position: undefined };
      },
    });
    const store = new EsdbEventStore(client);

    // when the append reads back its event's position,
    const append = store.appendToStream('booking-1', [newEvent()]);

    // then it fails, but not as a refusal (which would tell the caller nothing was appended).
    await expect(append).rejects.toThrow();
    await expect(append).rejects.not.toBeInstanceOf(StreamDeletedError);
  });
});

function storedEvent(streamId: string, revision: number) {
  const position = BigInt(10 + revision);
  return {
    streamId,
    id: randomUUID(),
    revision: BigInt(revision),
    type: 'BookingRequested',
    data: {},
    metadata: {},
    isJson: true,
    created: new Date(0),
    position: { commit: position, prepare: position },
  };
}

function newEvent() {
  return { id: randomUUID(), type: 'BookingRequested', data: { nights: 2 }, metadata: { actorId: 'u1' } };
}

/**
 * A client whose streams live in memory, remembering the options of each stream read and append:
 * an append succeeds at the stream's revision and is refused (as with throwOnAppendFailure=false)
 * at any other.
 */
function recordingClient() {
  const client = EventStoreDBClient.connectionString('esdb://127.0.0.1:2113?tls=false');
  const asked: { call: string; requiresLeader: boolean | undefined }[] = [];
  const stored: (Omit<ReturnType<typeof storedEvent>, 'id' | 'data' | 'metadata'> & Pick<EventData, 'id' | 'data' | 'metadata'>)[] = [];
  Object.assign(client, {
    readStream: (_streamId: string, options: ReadStreamOptions = {}) => {
      asked.push({ call: 'readStream', requiresLeader: options.requiresLeader });
      const from = typeof options.fromRevision === 'bigint' ? Number(options.fromRevision) : 0;
      const events = options.direction === BACKWARDS ? [...stored].reverse() : stored.slice(from);
      return Readable.from(events.slice(0, Number(options.maxCount ?? events.length)).map((event) => ({ event })));
    },
    appendToStream: async (streamId: string, events: EventData[], options: AppendToStreamOptions = {}) => {
      asked.push({ call: 'appendToStream', requiresLeader: options.requiresLeader });
      const revision = stored.length - 1;
      if (options.expectedRevision !== (revision < 0 ? 'no_stream' : BigInt(revision))) return { success: false, nextExpectedRevision: 1n, position: undefined };
      for (const { id, data, metadata } of events) stored.push({ ...storedEvent(streamId, stored.length), id, data, metadata });
      return { success: true, nextExpectedRevision: BigInt(stored.length - 1), position: undefined };
    },
  });
  return { client, asked };
}

/** A client for which every stream was tombstoned: a read fails as the server fails it. */
function clientWhoseStreamsAreDeleted() {
  const client = Object.assign(EventStoreDBClient.connectionString('esdb://127.0.0.1:2113?tls=false'), { appended: 0 });
  Object.assign(client, {
    readStream: (streamId: string) =>
      new Readable({
        objectMode: true,
        read() {
          this.destroy(EsdbStreamDeletedError.fromStreamName(streamId));
        },
      }),
    appendToStream: async () => {
      client.appended += 1;
      return { success: true, nextExpectedRevision: 0n, position: undefined };
    },
  });
  return client;
}

/** One event as the server sends it on a subscription, in the client's own protobuf messages. */
function serverSends(n: number): streams.ReadResp {
  const id = new shared.UUID().setString(randomUUID());
  const streamId = new shared.StreamIdentifier().setStreamName(Buffer.from(`payment-${n}`));
  const recorded = new streams.ReadResp.ReadEvent.RecordedEvent()
    .setId(id)
    .setStreamIdentifier(streamId)
    .setStreamRevision('0')
    .setCommitPosition(String(10 + n))
    .setPreparePosition(String(10 + n))
    .setData(Buffer.from(JSON.stringify({ paymentId: `payment-${n}` })));
  recorded.getMetadataMap().set('type', 'PaymentSucceeded').set('content-type', 'application/json').set('created', '0');
  return new streams.ReadResp().setEvent(new streams.ReadResp.ReadEvent().setEvent(recorded));
}

/**
 * The gRPC call under a subscription: it answers `responses`, then either ends (as when the
 * server closes it with an OK status: shutting down, a leader change) or waits for more.
 */
class SubscriptionCall extends Readable {
  cancelled = false;
  private readonly responses: Iterator<streams.ReadResp>;

  constructor(
    responses: Iterable<streams.ReadResp>,
    private readonly then: 'ends' | 'waits',
  ) {
    super({ objectMode: true });
    this.responses = responses[Symbol.iterator]();
  }

  override _read(): void {
    const next = this.responses.next();
    if (!next.done) this.push(next.value);
    else if (this.then === 'ends') this.push(null);
  }

  cancel(): void {
    this.cancelled = true;
    this.destroy();
  }
}

/** A client connected to no server, whose `subscribeToAll` builds its own subscription over `call`. */
function clientWhoseSubscriptionReads(call: SubscriptionCall): EventStoreDBClient {
  const client = EventStoreDBClient.connectionString('esdb://127.0.0.1:2113?tls=false');
  return Object.assign(client, { getGRPCClient: async () => ({ read: () => call }) });
}

/** How many of `refs` a full collection leaves (vitest runs without --expose-gc). */
async function countReachable(refs: readonly WeakRef<object>[]): Promise<number> {
  // A WeakRef keeps its target until the job that made or read it has ended.
  await new Promise((resolve) => setImmediate(resolve));
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return refs.filter((ref) => ref.deref() !== undefined).length;
}
