import { randomUUID } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import type { EventStore, JsonObject, NewEvent, RecordedEvent } from '../../src/application/ports/event-store.js';
import { SubjectKeyUnreadableError, type SubjectKeyStore } from '../../src/application/ports/subject-keys.js';
import { PersonalDataVault } from '../../src/application/privacy/personal-data-vault.js';
import { RevealingEventStore } from '../../src/application/privacy/revealing-event-store.js';
import { erasedPlaceholder } from '../../src/domain/shared/personal-data.js';
import { subjectErasedType } from '../../src/domain/user/user.events.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { MemorySubjectKeyStore } from '../../src/infrastructure/privacy/memory-subject-key-store.js';

/** Keys in memory, with every `find` noted (how many subjects it asked for). */
function countingKeys(keys = new MemorySubjectKeyStore(), refuse: (subjectIds: readonly string[]) => Error | undefined = () => undefined) {
  const finds: number[] = [];
  const store: SubjectKeyStore = {
    obtain: (subjectId) => keys.obtain(subjectId),
    find: (subjectIds) => {
      finds.push(subjectIds.length);
      const refused = refuse(subjectIds);
      return refused ? Promise.reject(refused) : keys.find(subjectIds);
    },
    isErased: (subjectId) => keys.isErased(subjectId),
    destroy: (subjectId) => keys.destroy(subjectId),
  };
  return { keys, store, finds };
}

/** An event whose `reason` is sealed for `subjectId`, by a vault of its own (the reading vault starts cold). */
async function sealedFor(sealer: PersonalDataVault, subjectId: string, index: number): Promise<NewEvent> {
  const { data, personalData } = await sealer.seal(subjectId, { index, reason: `reason of ${subjectId}` }, [['reason']]);
  const metadata: JsonObject = personalData ? { personalData } : {};
  return { id: randomUUID(), type: 'Counted', data, metadata };
}

/** `count` events, each sealed for a subject of its own, appended to streams of 1,000. */
async function logOfDistinctSubjects(keys: MemorySubjectKeyStore, count: number): Promise<{ stored: MemoryEventStore; subjects: string[] }> {
  const stored = new MemoryEventStore();
  const sealer = new PersonalDataVault(keys);
  const subjects = Array.from({ length: count }, (_, index) => `patient-${index}`);
  const events = await Promise.all(subjects.map((subjectId, index) => sealedFor(sealer, subjectId, index)));
  for (let start = 0; start < count; start += 1_000) await stored.appendToStream(`counted-${start / 1_000}`, events.slice(start, start + 1_000));
  return { stored, subjects };
}

async function collect(events: AsyncIterable<RecordedEvent>, limit = Number.POSITIVE_INFINITY): Promise<RecordedEvent[]> {
  const read: RecordedEvent[] = [];
  for await (const event of events) {
    read.push(event);
    if (read.length >= limit) break;
  }
  return read;
}

// More people than the vault keeps keys for (10,000): every key is missing when its event comes.
const events = 12_000;
// Events revealed together at most; a lookup per batch, and a few to spare.
const batch = 500;
const lookupsAtMost = Math.ceil(events / batch) + 3;

describe('RevealingEventStore key lookups', () => {
  it.each<[string, (store: EventStore, signal: AbortSignal) => Promise<RecordedEvent[]>]>([
    ['readAll', (store) => collect(store.readAll())],
    ['a catch-up subscription', (store, signal) => collect(store.subscribeToAll({ signal }), events)],
    [
      'readStream',
      async (store) => {
        const read: RecordedEvent[] = [];
        for (let stream = 0; stream < events / 1_000; stream++) {
          const result = await store.readStream(`counted-${stream}`);
          if (result.status === 'found') read.push(...(await collect(result.events)));
        }
        return read;
      },
    ],
  ])('reveals a log of more subjects than the vault keeps keys for with a lookup per batch, not per event (%s)', async (_read, read) => {
    const { keys, store: keyStore, finds } = countingKeys();
    const { stored, subjects } = await logOfDistinctSubjects(keys, events);
    const revealing = new RevealingEventStore(stored, new PersonalDataVault(keyStore));
    const stop = new AbortController();

    const revealed = await read(revealing, stop.signal);
    stop.abort();

    expect(revealed.map((event) => event.data.reason)).toEqual(subjects.map((subjectId) => `reason of ${subjectId}`));
    // `readStream` reads 1,000 events at a time: a lookup per batch of each read.
    const allowed = _read === 'readStream' ? (events / 1_000) * Math.ceil(1_000 / batch) + 3 : lookupsAtMost;
    expect(finds.length).toBeLessThanOrEqual(allowed);
    expect(finds.reduce((sum, asked) => sum + asked, 0)).toBe(events);
  });

  it('uses no key fetched ahead for the events after a SubjectErased of its subject', async () => {
    // The store still answers with the key: only the log says the subject is gone.
    const { keys, store: keyStore, finds } = countingKeys();
    const sealer = new PersonalDataVault(keys);
    const stored = new MemoryEventStore();
    await stored.appendToStream('counted-0', [await sealedFor(sealer, 'ada', 0), await sealedFor(sealer, 'bob', 1)]);
    await stored.appendToStream('user-ada', [{ id: randomUUID(), type: subjectErasedType, data: { userId: 'ada' }, metadata: {} }]);
    await stored.appendToStream('counted-0', [await sealedFor(sealer, 'ada', 2), await sealedFor(sealer, 'bob', 3)]);

    const revealed = await collect(new RevealingEventStore(stored, new PersonalDataVault(keyStore)).readAll());

    expect(revealed.map((event) => event.data.reason)).toEqual(['reason of ada', 'reason of bob', undefined, erasedPlaceholder, 'reason of bob']);
    expect(finds).toEqual([2]);
  });

  it('lays a key that does not unwrap on its own event, not on the others fetched with it', async () => {
    const unreadable = new SubjectKeyUnreadableError('the data key of subject bob does not open under MASTER_KEY');
    const { keys, store: keyStore } = countingKeys(new MemorySubjectKeyStore(), (subjectIds) => (subjectIds.includes('bob') ? unreadable : undefined));
    const sealer = new PersonalDataVault(keys);
    const stored = new MemoryEventStore();
    await stored.appendToStream('counted-0', [await sealedFor(sealer, 'ada', 0), await sealedFor(sealer, 'bob', 1), await sealedFor(sealer, 'cy', 2)]);
    const marked: string[] = [];
    const revealing = new RevealingEventStore(stored, new PersonalDataVault(keyStore), {
      unrevealable: (error) => {
        marked.push(String(error.event.data.index));
        return error.event;
      },
    });

    const revealed = await collect(revealing.readAll());

    expect(marked).toEqual(['1']);
    expect(revealed.map((event) => event.data.reason)).toEqual(['reason of ada', expect.any(String), 'reason of cy']);
    expect(revealed[1]?.data.reason).not.toBe('reason of bob');
  });

  it('hands a live event over at once and ends promptly, not held waiting for events to fetch keys with', async () => {
    const { keys, store: keyStore, finds } = countingKeys();
    const sealer = new PersonalDataVault(keys);
    const stored = new MemoryEventStore();
    await stored.appendToStream('counted-0', [await sealedFor(sealer, 'ada', 0)]);
    const subscription = new RevealingEventStore(stored, new PersonalDataVault(keyStore)).subscribeToAll()[Symbol.asyncIterator]();

    expect((await subscription.next()).value).toMatchObject({ data: { reason: 'reason of ada' } });
    const live = subscription.next();
    await stored.appendToStream('counted-0', [await sealedFor(sealer, 'bob', 1)]);
    expect((await live).value).toMatchObject({ data: { reason: 'reason of bob' } });
    expect(finds).toEqual([1, 1]);

    // Caught up, with the source asked for the next event ahead of the reader: no abort, yet it ends.
    const ended = await Promise.race([subscription.return?.(), new Promise((resolve) => setTimeout(resolve, 1_000, 'still waiting'))]);
    expect(ended).toEqual({ done: true, value: undefined });
    await stored.close();
  });
});

describe('RevealingEventStore subscriptions', () => {
  /** The store, with how many of its subscriptions are still going. */
  function countingSubscriptions(stored: EventStore) {
    let open = 0;
    const counted: EventStore = {
      ...stored,
      appendToStream: (streamId, events, options) => stored.appendToStream(streamId, events, options),
      readStream: (streamId, options) => stored.readStream(streamId, options),
      readAll: (options) => stored.readAll(options),
      headPosition: () => stored.headPosition(),
      close: () => stored.close(),
      subscribeToAll: (options) =>
        (async function* () {
          open++;
          try {
            yield* stored.subscribeToAll(options);
          } finally {
            open--;
          }
        })(),
    };
    return { counted, open: () => open };
  }

  it('ends the subscription under it when a read fails or stops while caught up, rather than leave it polling for the next event', async () => {
    const unreadable = new SubjectKeyUnreadableError('the data key of subject ada does not open under MASTER_KEY');
    const { keys, store: keyStore } = countingKeys(new MemorySubjectKeyStore(), () => unreadable);
    const stored = new MemoryEventStore();
    await stored.appendToStream('counted-0', [await sealedFor(new PersonalDataVault(keys), 'ada', 0)]);
    const { counted, open } = countingSubscriptions(stored);
    const revealing = new RevealingEventStore(counted, new PersonalDataVault(keyStore));

    for (let attempt = 0; attempt < 5; attempt++) await expect(collect(revealing.subscribeToAll())).rejects.toThrow(/does not open/);
    const stopped = revealing.subscribeToAll()[Symbol.asyncIterator]();
    await expect(stopped.next()).rejects.toThrow(/does not open/);
    await stopped.return?.();

    await vi.waitFor(() => expect(open()).toBe(0), { timeout: 1_000 });
    await stored.close();
  });
});

describe('PersonalDataVault key cache', () => {
  it('lets go of the key unused longest when full, not the one fetched first', async () => {
    const { keys, store: keyStore, finds } = countingKeys();
    const sealer = new PersonalDataVault(keys);
    const [ada, bob, cy] = await Promise.all(['ada', 'bob', 'cy'].map((subjectId, index) => sealedFor(sealer, subjectId, index)));
    if (!ada || !bob || !cy) throw new Error('three events');
    const vault = new PersonalDataVault(keyStore, { maxCachedKeys: 2 });

    await vault.reveal([ada]);
    await vault.reveal([bob]);
    expect(vault.revealCached(ada)).toBeDefined();
    await vault.reveal([cy]);

    expect(vault.revealCached(ada)?.data.reason).toBe('reason of ada');
    expect(vault.revealCached(bob)).toBeUndefined();
    expect(finds).toEqual([1, 1, 1]);
  });
});
