import { randomUUID } from 'node:crypto';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { aggregates } from '../../src/application/aggregates/aggregates.js';
import { verifyAllStreams, type StreamBreak, type StreamEvent } from '../../src/application/audit/audit-export.js';
import { canonicalJson, eventHash, genesisHash, verifyChain } from '../../src/application/audit/hash-chain.js';
import type { EventReader } from '../../src/application/audit/stream-history.js';
import { commandHandler } from '../../src/application/command-handling/handle-command.js';
import type { EventStore, JsonValue, RecordedEvent } from '../../src/application/ports/event-store.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { as, fakeClock, listingInput, owner, streamEvents } from '../support/command-side.js';
import { createListing, deactivateListing, updateListing } from './support/listing-commands.js';

/**
 * Canonical JSON the obvious way, as the chain was first computed: stored hashes depend on every
 * byte staying the same. (Not a sorted copy through JSON.stringify: objects list integer-like keys
 * first, whatever order they were added in.)
 */
function obviousCanonicalJson(value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(obviousCanonicalJson).join(',')}]`;
  const members = Object.keys(value)
    .sort()
    .flatMap((key) => {
      const member = value[key];
      return member === undefined ? [] : [`${JSON.stringify(key)}:${obviousCanonicalJson(member)}`];
    });
  return `{${members.join(',')}}`;
}

/** `events` with the `pricePerDay` of the event at `revision` changed, as an attacker with raw access might. */
const editing = (events: readonly RecordedEvent[], revision: number): RecordedEvent[] =>
  events.map((event) => (event.revision === revision ? { ...event, data: { ...event.data, pricePerDay: 1 } } : event));

/** `events` with those at `revisions` edited and stripped of their chain fields: the attack on a stream's end. */
const editingAndStripping = (events: readonly RecordedEvent[], ...revisions: number[]): RecordedEvent[] =>
  events.map((event) => {
    if (!revisions.includes(event.revision)) return event;
    const { hash: _hash, prevHash: _prevHash, ...metadata } = event.metadata;
    return { ...event, data: { ...event.data, pricePerDay: 1 }, metadata };
  });

describe('canonical JSON', () => {
  test.prop([fc.jsonValue()])('gives, for any JSON value, the text the chain has always hashed', (value) => {
    const json = value as JsonValue;
    expect(canonicalJson(json)).toBe(obviousCanonicalJson(json));
  });

  it('sorts keys at every depth and leaves no whitespace', () => {
    expect(canonicalJson({ b: 1, a: [{ d: true, c: null }, 'x'], e: { g: 'é', f: 1.5 } })).toBe('{"a":[{"c":null,"d":true},"x"],"b":1,"e":{"f":1.5,"g":"é"}}');
  });
});

describe('the audit hash chain of the command loop', () => {
  async function listingHistory() {
    const eventStore = new MemoryEventStore();
    const handler = commandHandler(aggregates.listing, { eventStore, clock: fakeClock('2030-01-01T00:00:00Z') });
    const listingId = randomUUID();
    const streamId = `listing-${listingId}`;
    await handler.handle(streamId, createListing(listingId, listingInput), as(owner));
    await handler.handle(streamId, updateListing(listingId, { pricePerDay: 9_000 }), as(owner));
    return { eventStore, handler, streamId, listingId };
  }

  it('links every event to its predecessor, from the genesis hash on', async () => {
    const { eventStore, streamId } = await listingHistory();
    const events = await streamEvents(eventStore, streamId);
    expect(events[0]?.metadata.prevHash).toBe(genesisHash);
    expect(events[1]?.metadata.prevHash).toBe(events[0]?.metadata.hash);
    expect(await verifyChain(events)).toMatchObject({ status: 'intact', eventsChecked: 2, lastHash: events[1]?.metadata.hash });
  });

  it('names the first revision whose content was edited', async () => {
    const { eventStore, streamId } = await listingHistory();
    const events = await streamEvents(eventStore, streamId);
    expect(await verifyChain(editing(events, 1))).toMatchObject({ status: 'broken', brokenAt: { revision: 1, reason: 'hash-mismatch' } });
  });

  it('names the event after one that was removed', async () => {
    const { eventStore, handler, streamId, listingId } = await listingHistory();
    await handler.handle(streamId, deactivateListing(listingId), as(owner));
    const events = await streamEvents(eventStore, streamId);
    const [first, , third] = events;
    if (!first || !third) throw new Error('expected three events');
    const rewritten: RecordedEvent[] = [first, { ...third, revision: 1 }];
    expect(await verifyChain(rewritten)).toMatchObject({ status: 'broken', brokenAt: { revision: 1, reason: 'prev-hash-mismatch' } });
  });

  /** `listingHistory`, then an event appended outside the loop (revision 2) and a command after it (3). */
  async function historyWithOutsider() {
    const history = await listingHistory();
    const { eventStore, handler, streamId, listingId } = history;
    await eventStore.appendToStream(streamId, [{ id: randomUUID(), type: 'ListingDeactivated', data: { listingId }, metadata: { schemaVersion: 1 } }]);
    await handler.handle(streamId, updateListing(listingId, { pricePerDay: 8_000 }), as(owner));
    return { ...history, events: await streamEvents(eventStore, streamId) };
  }

  it("verifies an event appended outside the loop through the next event's link, which the loop made over it: intact, and listed as unhashed", async () => {
    const { events } = await historyWithOutsider();
    const [, second, outsider, after] = events;
    if (!second || !outsider || !after) throw new Error('expected four events');
    expect(after.metadata.prevHash).toBe(eventHash(String(second.metadata.hash), outsider));
    expect(await verifyChain(events)).toEqual({ status: 'intact', eventsChecked: 4, lastHash: after.metadata.hash, unhashed: [{ revision: 2, eventId: outsider.id }] });
  });

  it('names an edit made after an unhashed event, with the unhashed event before it', async () => {
    const { events } = await historyWithOutsider();
    expect(await verifyChain(editing(events, 3))).toMatchObject({ status: 'broken', brokenAt: { revision: 3, reason: 'hash-mismatch' }, unhashed: [{ revision: 2 }] });
  });

  it('names an edit of the event without a hash at the event after it, whose link covers it', async () => {
    const { events } = await historyWithOutsider();
    expect(await verifyChain(editing(events, 2))).toMatchObject({ status: 'broken', brokenAt: { revision: 3, reason: 'prev-hash-mismatch' }, unhashed: [{ revision: 2 }] });
  });

  it('names an edit of a hashed event whose chain fields were stripped, in the middle of a stream, at the event after it', async () => {
    const { eventStore, handler, streamId, listingId } = await listingHistory();
    await handler.handle(streamId, deactivateListing(listingId), as(owner));
    const events = await streamEvents(eventStore, streamId);
    expect(await verifyChain(editingAndStripping(events, 1))).toMatchObject({ status: 'broken', brokenAt: { revision: 2, reason: 'prev-hash-mismatch' } });
  });

  it('never calls intact a stream whose last event was edited and stripped of its chain fields: an unverified tail, from that event', async () => {
    const { eventStore, streamId } = await listingHistory();
    const events = await streamEvents(eventStore, streamId);
    const last = events[1];
    if (!last) throw new Error('expected two events');
    expect(await verifyChain(editingAndStripping(events, 1))).toEqual({
      status: 'unverified-tail',
      eventsChecked: 2,
      lastHash: expect.any(String),
      unhashed: [],
      unverifiedFrom: { revision: 1, eventId: last.id },
    });
  });

  it('names where an unverified tail of several events begins, and lists the unhashed events a link covers before it', async () => {
    const { events, eventStore, handler, streamId, listingId } = await historyWithOutsider();
    const outsider = events[2];
    if (!outsider) throw new Error('expected four events');
    // Stripping the event that covered the outsider leaves both uncovered.
    expect(await verifyChain(editingAndStripping(events, 3))).toMatchObject({ status: 'unverified-tail', unhashed: [], unverifiedFrom: { revision: 2, eventId: outsider.id } });
    expect(await verifyChain(editingAndStripping(events, 1, 3))).toMatchObject({ status: 'unverified-tail', unhashed: [], unverifiedFrom: { revision: 1 } });

    await handler.handle(streamId, updateListing(listingId, { pricePerDay: 7_000 }), as(owner));
    const longer = await streamEvents(eventStore, streamId);
    expect(await verifyChain(editingAndStripping(longer, 4))).toMatchObject({ status: 'unverified-tail', unhashed: [{ revision: 2, eventId: outsider.id }], unverifiedFrom: { revision: 4, eventId: longer[4]?.id } });
  });

  it('calls an event appended outside the loop at the end of a stream an unverified tail: nothing links to it yet', async () => {
    const { eventStore, streamId, listingId } = await listingHistory();
    await eventStore.appendToStream(streamId, [{ id: randomUUID(), type: 'ListingDeactivated', data: { listingId }, metadata: { schemaVersion: 1 } }]);
    expect(await verifyChain(await streamEvents(eventStore, streamId))).toMatchObject({ status: 'unverified-tail', unverifiedFrom: { revision: 2 } });
  });

  it('catches a stripped tail edited before the next command of a loop that remembers its hash; a loop started afresh links to it as it reads it now', async () => {
    const { eventStore, streamId, listingId } = await listingHistory();
    const events = await streamEvents(eventStore, streamId);
    const storeOf = async (stored: readonly RecordedEvent[]) => {
      const store = new MemoryEventStore();
      for (const event of stored) await store.appendToStream(streamId, [{ id: event.id, type: event.type, data: event.data, metadata: event.metadata }]);
      return store;
    };
    // A loop that read the stream before the attack, and so holds its tail's hash, then reads the tampered store.
    let seen: EventStore = await storeOf(events);
    const switching: EventStore = {
      appendToStream: (id, appended, options) => seen.appendToStream(id, appended, options),
      readStream: (id, options) => seen.readStream(id, options),
      readAll: (options) => seen.readAll(options),
      subscribeToAll: (options) => seen.subscribeToAll(options),
      headPosition: () => seen.headPosition(),
      close: () => seen.close(),
    };
    const remembering = commandHandler(aggregates.listing, { eventStore: switching, clock: fakeClock('2030-01-01T00:00:00Z') });
    await remembering.read(streamId);
    seen = await storeOf(editingAndStripping(events, 1));
    await remembering.handle(streamId, updateListing(listingId, { pricePerDay: 8_000 }), as(owner));
    expect(await verifyChain(await streamEvents(seen, streamId))).toMatchObject({ status: 'broken', brokenAt: { revision: 2, reason: 'prev-hash-mismatch' } });

    const tampered = await storeOf(editingAndStripping(events, 1));
    const afresh = commandHandler(aggregates.listing, { eventStore: tampered, clock: fakeClock('2030-01-01T00:00:00Z') });
    await afresh.handle(streamId, updateListing(listingId, { pricePerDay: 8_000 }), as(owner));
    // What the chain cannot show: an edit made while the event was an unverified tail, before a loop first read it.
    expect(await verifyChain(await streamEvents(tampered, streamId))).toMatchObject({ status: 'intact', unhashed: [{ revision: 1 }] });
  });
});

describe('verifying every stream of the log (npm run audit:verify)', () => {
  const logOf = (events: readonly RecordedEvent[]): EventReader => ({
    readStream: async () => ({ status: 'no_stream' }),
    readAll: async function* () {
      yield* events;
    },
  });

  /** A listing (revision 0), an event appended outside the loop (1), two commands after it (2, 3). */
  async function logWithOutsider() {
    const eventStore = new MemoryEventStore();
    const handler = commandHandler(aggregates.listing, { eventStore, clock: fakeClock('2030-01-01T00:00:00Z') });
    const listingId = randomUUID();
    const streamId = `listing-${listingId}`;
    await handler.handle(streamId, createListing(listingId, listingInput), as(owner));
    await eventStore.appendToStream(streamId, [{ id: randomUUID(), type: 'ListingPriceChanged', data: { listingId, pricePerDay: 5_000, currency: 'EUR' }, metadata: { schemaVersion: 1 } }]);
    await handler.handle(streamId, updateListing(listingId, { pricePerDay: 8_000 }), as(owner));
    await handler.handle(streamId, updateListing(listingId, { pricePerDay: 9_000 }), as(owner));
    return { streamId, events: await streamEvents(eventStore, streamId) };
  }

  it('counts an unhashed event a later link covers, goes on past it, and names the first break after it', async () => {
    const { events, streamId } = await logWithOutsider();
    const seen: string[] = [];
    const report = {
      onBreak: (found: StreamBreak) => seen.push(`break ${found.revision} ${found.reason}`),
      onUnhashed: (event: StreamEvent) => seen.push(`unhashed ${event.revision}`),
      onUnverifiedTail: (from: StreamEvent) => seen.push(`unverified from ${from.revision}`),
    };

    expect(await verifyAllStreams(logOf(events), report)).toEqual({ streams: 1, events: 4, broken: [], unhashed: 1, unverifiedTails: [] });
    expect(await verifyAllStreams(logOf(editing(events, 3)), report)).toEqual({ streams: 1, events: 4, broken: [{ streamId, revision: 3, reason: 'hash-mismatch' }], unhashed: 1, unverifiedTails: [] });
    expect(seen).toEqual(['unhashed 1', 'unhashed 1', 'break 3 hash-mismatch']);
  });

  it('names the unverified tail of a stream whose last event was edited and stripped of its chain fields, apart from its breaks', async () => {
    const { events, streamId } = await logWithOutsider();
    const seen: string[] = [];
    const report = { onUnverifiedTail: (from: StreamEvent) => seen.push(`unverified ${from.streamId} from ${from.revision}`) };

    expect(await verifyAllStreams(logOf(editingAndStripping(events, 3)), report)).toEqual({ streams: 1, events: 4, broken: [], unhashed: 1, unverifiedTails: [{ streamId, revision: 3 }] });
    expect(await verifyAllStreams(logOf(editingAndStripping(events, 2, 3)), report)).toMatchObject({ broken: [], unverifiedTails: [{ streamId, revision: 1 }] });
    expect(seen).toEqual([`unverified ${streamId} from 3`, `unverified ${streamId} from 1`]);
    expect(await verifyAllStreams(logOf(editing(editingAndStripping(events, 3), 2)))).toMatchObject({ broken: [{ revision: 2, reason: 'hash-mismatch' }], unverifiedTails: [] });
  });
});
