import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventStore } from '../../src/application/ports/event-store.js';
import { formatPosition } from '../../src/application/ports/position.js';
import { PersonalDataVault } from '../../src/application/privacy/personal-data-vault.js';
import { RevealingEventStore } from '../../src/application/privacy/revealing-event-store.js';
import { MemorySubjectKeyStore } from '../../src/infrastructure/privacy/memory-subject-key-store.js';
import { PgSubjectKeyStore } from '../../src/infrastructure/privacy/pg-subject-key-store.js';
import { SharedTailEventStore } from '../../src/infrastructure/shared-subscription/shared-tail-event-store.js';
import { eventCountsProjection, readEventCounts } from '../../src/projections/event-counts/event-counts.projection.js';
import { activeCheckpoint, appendEvents, createHarness, eventually, onlyPrefix, type Harness } from './support/runtime-harness.js';

/**
 * An event the read path cannot reveal stops every projection at it: each must say so, as it
 * does for a handler's failure. A database per test: every projection that starts from the first
 * event meets such an event in its log.
 */
let harness: Harness;

beforeEach(async () => {
  harness = await createHarness();
});

afterEach(async () => {
  await harness.close();
});

/** `store` with the time of each subscription it opened noted. */
function notingSubscriptions(store: EventStore, at: number[]): EventStore {
  return {
    appendToStream: (...args) => store.appendToStream(...args),
    readStream: (...args) => store.readStream(...args),
    readAll: (options) => store.readAll(options),
    subscribeToAll: (options) => {
      at.push(performance.now());
      return store.subscribeToAll(options);
    },
    headPosition: () => store.headPosition(),
    close: () => store.close(),
  };
}

/** An event-counting projection reading `eventStore`, that tries a failing event 3 times, 40 then 60 ms apart. */
function countingFast(name: string, eventStore: EventStore) {
  return harness.startRuntime([eventCountsProjection({ name, eventTypes: ['Counted'] })], { eventStore, maxAttempts: 3, retryDelayMs: 40, retryMaxDelayMs: 60 });
}

/** The projection's checkpoint once it is recorded failed. */
function failedCheckpoint(name: string) {
  return eventually(async () => {
    const row = await activeCheckpoint(harness.db, name);
    return row?.status === 'failed' && row;
  }, 10_000, 'the projection to fail');
}

describe('an event the read path cannot reveal', () => {
  it.each([
    ['its own subscription', (revealed: EventStore) => revealed],
    ['the shared tail of the projector role', (revealed: EventStore) => new SharedTailEventStore(revealed)],
  ])('read through %s, is retried with backoff, then the projection is failed at that event', async (_through, reader) => {
    const name = `unrevealable_${randomUUID().slice(0, 8)}`;
    const before = await appendEvents(harness.store, { streams: 1, perStream: 5, prefix: name });
    const id = randomUUID();
    // Sealed fields named in a shape the vault cannot parse: nothing can reveal this event.
    const unrevealable = await harness.store.appendToStream(`${name}-0`, [
      { id, type: 'Counted', data: { index: 5 }, metadata: { personalData: 'name' } },
    ]);
    await appendEvents(harness.store, { streams: 1, perStream: 5, prefix: `${name}_after` });

    const subscribed: number[] = [];
    const source = reader(harness.revealed);
    const eventStore = notingSubscriptions(source, subscribed);
    const runtime = countingFast(name, eventStore);

    const failed = await failedCheckpoint(name);
    expect(failed.lastFailure).toMatchObject({
      eventPosition: formatPosition(unrevealable.position),
      eventType: 'Counted',
      eventId: id,
      error: expect.stringContaining('could not be revealed'),
    });
    // Everything before it was committed, nothing of it or after it.
    expect(failed.position).toBe(formatPosition(before.last));
    expect(onlyPrefix(await readEventCounts(harness.db, name), name)).toEqual(new Map([[`${name}-0`, 5]]));
    expect(runtime.status()[0]).toMatchObject({ state: 'failed', lastError: { eventType: 'Counted', position: formatPosition(unrevealable.position) } });

    // Tried three times (`maxAttempts`), waiting 40 ms, then 60 (doubled, capped) between tries.
    expect(subscribed).toHaveLength(3);
    const waits = subscribed.slice(1).map((at, index) => at - (subscribed[index] ?? at));
    expect(waits[0]).toBeGreaterThanOrEqual(35);
    expect(waits[1]).toBeGreaterThanOrEqual(55);
    await runtime.stop();
    if (source instanceof SharedTailEventStore) source.detach();
  });

  it('is an event whose data key does not open under this MASTER_KEY: the projection is failed at it', async () => {
    const name = `other_master_${randomUUID().slice(0, 8)}`;
    const { data, personalData } = await harness.vault.seal(`patient-${randomUUID()}`, { index: 0, reason: 'migraine' }, [['reason']]);
    const sealed = await harness.store.appendToStream(`${name}-0`, [{ id: randomUUID(), type: 'Counted', data, metadata: personalData ? { personalData } : {} }]);
    const otherMaster = new PersonalDataVault(new PgSubjectKeyStore(harness.pool, Buffer.alloc(32, 0x11)));
    const runtime = countingFast(name, new RevealingEventStore(harness.store, otherMaster));

    const failed = await failedCheckpoint(name);
    expect(failed.lastFailure).toMatchObject({ eventPosition: formatPosition(sealed.position), error: expect.stringContaining('MASTER_KEY') });
    await runtime.stop();
  });

  it('is not an event whose key store did not answer: that passes, and nothing is failed', async () => {
    const name = `keys_away_${randomUUID().slice(0, 8)}`;
    const keys = new MemorySubjectKeyStore();
    const sealer = new PersonalDataVault(keys);
    const { data, personalData } = await sealer.seal('patient-1', { index: 0, reason: 'migraine' }, [['reason']]);
    await harness.store.appendToStream(`${name}-0`, [{ id: randomUUID(), type: 'Counted', data, metadata: personalData ? { personalData } : {} }]);
    let lookupsRefused = 0;
    const flakyKeys = Object.assign(Object.create(keys) as MemorySubjectKeyStore, {
      find: (ids: readonly string[]) => (lookupsRefused++ < 4 ? Promise.reject(new Error('connection terminated')) : keys.find(ids)),
    });
    const runtime = countingFast(name, new RevealingEventStore(harness.store, new PersonalDataVault(flakyKeys)));

    await eventually(async () => onlyPrefix(await readEventCounts(harness.db, name), name).get(`${name}-0`) === 1, 10_000, 'the event to be counted');
    expect(lookupsRefused).toBeGreaterThan(3);
    expect((await activeCheckpoint(harness.db, name))?.status).toBe('running');
    await runtime.stop();
  });
});

