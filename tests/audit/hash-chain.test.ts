import { randomUUID } from 'node:crypto';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { aggregates } from '../../src/application/aggregates/aggregates.js';
import { verifyAllStreams, type StreamBreak, type StreamGap } from '../../src/application/audit/audit-export.js';
import { canonicalJson, eventHash, genesisHash, verifyChain } from '../../src/application/audit/hash-chain.js';
import type { EventReader } from '../../src/application/audit/stream-history.js';
import { commandHandler } from '../../src/application/command-handling/handle-command.js';
import type { JsonValue, RecordedEvent } from '../../src/application/ports/event-store.js';
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

  it('shows an event appended outside the loop as a gap, not a break, and links the next to it as the loop did', async () => {
    const { events } = await historyWithOutsider();
    const [, second, outsider, after] = events;
    if (!second || !outsider || !after) throw new Error('expected four events');
    expect(after.metadata.prevHash).toBe(eventHash(String(second.metadata.hash), outsider));
    expect(await verifyChain(events)).toEqual({ status: 'intact-with-gaps', eventsChecked: 4, lastHash: after.metadata.hash, gaps: [{ revision: 2, eventId: outsider.id }] });
  });

  it('names an edit made after a gap, with the gap before it', async () => {
    const { events } = await historyWithOutsider();
    expect(await verifyChain(editing(events, 3))).toMatchObject({ status: 'broken', brokenAt: { revision: 3, reason: 'hash-mismatch' }, gaps: [{ revision: 2 }] });
  });

  it('names an edit of the event without a hash at the event after it, whose link covers it', async () => {
    const { events } = await historyWithOutsider();
    expect(await verifyChain(editing(events, 2))).toMatchObject({ status: 'broken', brokenAt: { revision: 3, reason: 'prev-hash-mismatch' }, gaps: [{ revision: 2 }] });
  });
});

describe('verifying every stream of the log (npm run audit:verify)', () => {
  const logOf = (events: readonly RecordedEvent[]): EventReader => ({
    readStream: async () => ({ status: 'no_stream' }),
    readAll: async function* () {
      yield* events;
    },
  });

  it('counts a gap, goes on past it, and names the first break after it', async () => {
    const eventStore = new MemoryEventStore();
    const handler = commandHandler(aggregates.listing, { eventStore, clock: fakeClock('2030-01-01T00:00:00Z') });
    const listingId = randomUUID();
    const streamId = `listing-${listingId}`;
    await handler.handle(streamId, createListing(listingId, listingInput), as(owner));
    await eventStore.appendToStream(streamId, [{ id: randomUUID(), type: 'ListingPriceChanged', data: { listingId, pricePerDay: 5_000, currency: 'EUR' }, metadata: { schemaVersion: 1 } }]);
    await handler.handle(streamId, updateListing(listingId, { pricePerDay: 8_000 }), as(owner));
    await handler.handle(streamId, updateListing(listingId, { pricePerDay: 9_000 }), as(owner));
    const events = await streamEvents(eventStore, streamId);
    const seen: string[] = [];
    const report = { onBreak: (found: StreamBreak) => seen.push(`break ${found.revision} ${found.reason}`), onGap: (gap: StreamGap) => seen.push(`gap ${gap.revision}`) };

    expect(await verifyAllStreams(logOf(events), report)).toEqual({ streams: 1, events: 4, broken: [], gaps: 1 });
    expect(await verifyAllStreams(logOf(editing(events, 3)), report)).toEqual({ streams: 1, events: 4, broken: [{ streamId, revision: 3, reason: 'hash-mismatch' }], gaps: 1 });
    expect(seen).toEqual(['gap 1', 'gap 1', 'break 3 hash-mismatch']);
  });
});
