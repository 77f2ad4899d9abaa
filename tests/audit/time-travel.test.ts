import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { aggregates } from '../../src/application/aggregates/aggregates.js';
import { verifyChain } from '../../src/application/audit/hash-chain.js';
import { stateAt } from '../../src/application/audit/stream-history.js';
import { commandHandler } from '../../src/application/command-handling/handle-command.js';
import type { ListingCommand } from '../../src/domain/listing/listing.commands.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { as, fakeClock, listingInput, owner, streamEvents } from '../support/command-side.js';
import { createListing, deactivateListing, reactivateListing, updateListing } from './support/listing-commands.js';

type Step = { kind: 'price'; price: number } | { kind: 'title'; title: string } | { kind: 'deactivate' } | { kind: 'reactivate' };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant('price' as const), price: fc.integer({ min: 1, max: 100_000 }) }),
  fc.record({ kind: fc.constant('title' as const), title: fc.string({ minLength: 1, maxLength: 20 }) }),
  fc.constant({ kind: 'deactivate' as const }),
  fc.constant({ kind: 'reactivate' as const }),
);

function command(listingId: string, s: Step): ListingCommand {
  switch (s.kind) {
    case 'price':
      return updateListing(listingId, { pricePerDay: s.price });
    case 'title':
      return updateListing(listingId, { title: s.title });
    case 'deactivate':
      return deactivateListing(listingId);
    case 'reactivate':
      return reactivateListing(listingId);
    default: {
      const _exhaustive: never = s;
      return _exhaustive;
    }
  }
}

describe('time travel', () => {
  it('the state at version n, or at the instant of version n, is the state the command side had right after it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 15 }), async (steps) => {
        const eventStore = new MemoryEventStore();
        const clock = fakeClock('2030-01-01T00:00:00Z');
        // Tiny cache: some commands fold from the store, some from their own appends.
        const handler = commandHandler(aggregates.listing, { eventStore, clock, cacheSize: 1 });
        const listingId = randomUUID();
        const streamId = `listing-${listingId}`;
        const seen = new Map<number, { state: unknown; at: Date }>();
        const commands = [createListing(listingId, listingInput), ...steps.map((s) => command(listingId, s))];
        for (const next of commands) {
          clock.advance(60_000);
          try {
            const result = await handler.handle(streamId, next, as(owner));
            // A batch of several events: only its last version is a state the command side saw.
            if (result.events.length > 0) seen.set(result.version, { state: result.state, at: clock.now() });
          } catch (error) {
            if (!(error instanceof DomainError)) throw error;
          }
        }
        for (const [version, { state, at }] of seen) {
          expect(await stateAt(eventStore, streamId, { version })).toEqual({ status: 'found', past: expect.objectContaining({ version, state }) });
          expect(await stateAt(eventStore, streamId, { at })).toEqual({ status: 'found', past: expect.objectContaining({ version, state }) });
        }
        expect(await verifyChain(await streamEvents(eventStore, streamId))).toMatchObject({ status: 'intact' });
      }),
      { numRuns: 40 },
    );
  });

  it('the state at version n folds exactly the first n + 1 events with the aggregate’s own codec and evolve', async () => {
    const eventStore = new MemoryEventStore();
    const handler = commandHandler(aggregates.listing, { eventStore, clock: fakeClock('2030-01-01T00:00:00Z') });
    const listingId = randomUUID();
    const streamId = `listing-${listingId}`;
    await handler.handle(streamId, createListing(listingId, listingInput), as(owner));
    for (const price of [10, 20, 30]) await handler.handle(streamId, updateListing(listingId, { pricePerDay: price }), as(owner));
    const events = await streamEvents(eventStore, streamId);
    const { decider, codec } = aggregates.listing;
    for (let version = 0; version < events.length; version++) {
      const expected = events.slice(0, version + 1).map((event) => codec.decode(event)).reduce(decider.evolve, decider.initialState);
      expect(await stateAt(eventStore, streamId, { version })).toMatchObject({ status: 'found', past: { version, state: expected } });
    }
    expect(await stateAt(eventStore, 'nothing-1', { latest: true })).toEqual({ status: 'unknown-category' });
    expect(await stateAt(eventStore, 'listing-none', { latest: true })).toEqual({ status: 'no-stream' });
  });
});
