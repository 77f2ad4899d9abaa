import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { START } from '../../src/application/ports/position.js';
import { entryOverheadBytes, QueryCache, type QueryCacheOptions } from '../../src/infrastructure/http/query-cache.js';
import type { CheckpointNotification, CheckpointNotifications } from '../../src/projections/runtime/wait-for-position.js';

/** Checkpoint notifications by hand: `commit` announces a projection's batch, `reconnect` and `drop` move the connection. */
class Announcer implements CheckpointNotifications {
  epoch: number | undefined = 1;
  private connections = 1;
  private readonly listeners = new Set<(notification: CheckpointNotification) => void>();

  subscribe(listener: (notification: CheckpointNotification) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  commit(name: string): void {
    for (const listener of this.listeners) listener({ name, position: START });
  }

  reconnect(): void {
    this.epoch = ++this.connections;
  }

  drop(): void {
    this.epoch = undefined;
  }
}

function cacheOver(options: Partial<QueryCacheOptions> = {}) {
  const announcer = new Announcer();
  let now = 0;
  const cache = new QueryCache(announcer, { maxBytes: 1024 * 1024, maxAgeMs: 5000, now: () => now, ...options });
  /** Keeps `body` for `key`, read from `projections` just now. */
  const keep = (key: string, projections: readonly string[], body: string) => {
    const stamp = cache.stamp(projections);
    if (stamp) cache.set(key, projections, stamp, body);
  };
  return { announcer, cache, keep, advance: (ms: number) => (now += ms) };
}

describe('query cache', () => {
  it('serves a kept answer while none of its read models has committed since', () => {
    const { announcer, cache, keep } = cacheOver();
    keep('/v1/listings', ['listings', 'listing-availability'], 'page 1');
    announcer.commit('bookings');
    expect(cache.get('/v1/listings')).toBe('page 1');
  });

  it('forgets it once one of them commits', () => {
    const { announcer, cache, keep } = cacheOver();
    keep('/v1/listings', ['listings', 'listing-availability'], 'page 1');
    announcer.commit('listing-availability');
    expect(cache.get('/v1/listings')).toBeUndefined();
    expect(cache.size).toEqual({ entries: 0, bytes: 0 });
  });

  it('never keeps an answer whose read model committed while it was being read', () => {
    const { announcer, cache } = cacheOver();
    const stamp = cache.stamp(['listings']);
    announcer.commit('listings');
    if (stamp) cache.set('/v1/listings', ['listings'], stamp, 'read before or after the commit');
    expect(cache.get('/v1/listings')).toBeUndefined();
  });

  it('keeps nothing while nobody listens, and forgets everything on a reconnect (announcements may have been lost)', () => {
    const { announcer, cache, keep } = cacheOver();
    keep('/a', ['listings'], 'a');
    announcer.drop();
    expect(cache.stamp(['listings'])).toBeUndefined();
    expect(cache.get('/a')).toBeUndefined();
    announcer.reconnect();
    keep('/b', ['listings'], 'b');
    announcer.reconnect();
    expect(cache.get('/b')).toBeUndefined();
  });

  it('serves an answer no longer than its maximum age', () => {
    const { cache, keep, advance } = cacheOver({ maxAgeMs: 1000 });
    keep('/a', ['listings'], 'a');
    advance(1000);
    expect(cache.get('/a')).toBe('a');
    advance(1);
    expect(cache.get('/a')).toBeUndefined();
  });

  it('keeps at most its bytes, the least recently used answer out first', () => {
    // Two bytes per character, key included, and the overhead of the entry: 2 × (2 + 48) + overhead each.
    const entryBytes = 2 * (2 + 48) + entryOverheadBytes;
    const { cache, keep } = cacheOver({ maxBytes: 2.5 * entryBytes });
    const body = (name: string) => name.repeat(48);
    keep('/a', ['listings'], body('a'));
    keep('/b', ['listings'], body('b'));
    expect(cache.get('/a')).toBe(body('a'));
    keep('/c', ['listings'], body('c'));
    expect(cache.get('/b')).toBeUndefined();
    expect(cache.get('/a')).toBe(body('a'));
    expect(cache.get('/c')).toBe(body('c'));
    expect(cache.size).toEqual({ entries: 2, bytes: 2 * entryBytes });
    keep('/big', ['listings'], 'x'.repeat(2 * entryBytes));
    expect(cache.get('/big')).toBeUndefined();
  });

  it('counts what an entry costs beyond its characters, so that many tiny answers stay within its bytes', () => {
    // Measured in heap snapshots: about 400 bytes per entry besides the characters (the key
    // string, the stamp and its commits, the entry, the Map slot).
    const measuredOverhead = 400;
    const maxBytes = 64 * 1024;
    const { cache, keep } = cacheOver({ maxBytes });
    for (let i = 0; i < 1000; i++) keep(`/v1/listings/${String(i).padStart(4, '0')}`, ['listings'], '[]');
    const perEntry = measuredOverhead + 2 * ('/v1/listings/0000'.length + '[]'.length);
    expect(cache.size.entries).toBeLessThanOrEqual(Math.floor(maxBytes / perEntry));
    expect(cache.size.bytes).toBeLessThanOrEqual(maxBytes);
  });

  it('keeps nothing with no bytes to keep it in', () => {
    const { cache } = cacheOver({ maxBytes: 0 });
    expect(cache.stamp(['listings'])).toBeUndefined();
  });

  it('reports each lookup as a hit or a miss', () => {
    const outcomes: string[] = [];
    const { cache, keep } = cacheOver({ onLookup: (outcome) => outcomes.push(outcome) });
    cache.get('/a');
    keep('/a', ['listings'], 'a');
    cache.get('/a');
    expect(outcomes).toEqual(['miss', 'hit']);
  });

  // Model: each projection's read model is a version that a commit (announced at once) bumps. A
  // read takes a stamp, reads the versions, and keeps what it read later still, with commits,
  // reconnects and drops interleaved anywhere. Whatever the cache answers must be what reading
  // the read models now would give.
  const projections = ['listings', 'bookings', 'payments'] as const;
  const routes = [['listings'], ['bookings'], ['bookings', 'payments']] as const;
  const step = fc.oneof(
    fc.record({ kind: fc.constant('start' as const), route: fc.nat(routes.length - 1) }),
    fc.record({ kind: fc.constant('finish' as const), read: fc.nat(5) }),
    fc.record({ kind: fc.constant('lookup' as const), route: fc.nat(routes.length - 1) }),
    fc.record({ kind: fc.constant('commit' as const), projection: fc.constantFrom(...projections) }),
    fc.record({ kind: fc.constantFrom('reconnect' as const, 'drop' as const) }),
  );

  test.prop([fc.array(step, { minLength: 20, maxLength: 80 })], { numRuns: 300 })('never answers other than what reading the read models again would', (steps) => {
    const { announcer, cache } = cacheOver();
    const versions = new Map<string, number>(projections.map((name) => [name, 0]));
    const read = (route: readonly string[]) => route.map((name) => `${name}@${versions.get(name) ?? 0}`).join(',');
    const reading: { key: string; route: readonly string[]; stamp: NonNullable<ReturnType<typeof cache.stamp>>; body: string }[] = [];
    for (const s of steps) {
      if (s.kind === 'start') {
        const route = routes[s.route] ?? [];
        const stamp = cache.stamp(route);
        // The stamp is taken before the read; the body is what the read models hold just after.
        if (stamp) reading.push({ key: `/${s.route}`, route, stamp, body: read(route) });
      } else if (s.kind === 'finish') {
        const done = reading.splice(s.read % Math.max(1, reading.length), 1)[0];
        if (done) cache.set(done.key, done.route, done.stamp, done.body);
      } else if (s.kind === 'lookup') {
        const kept = cache.get(`/${s.route}`);
        if (kept !== undefined) expect(kept).toBe(read(routes[s.route] ?? []));
      } else if (s.kind === 'commit') {
        versions.set(s.projection, (versions.get(s.projection) ?? 0) + 1);
        if (announcer.epoch !== undefined) announcer.commit(s.projection);
      } else if (s.kind === 'drop') {
        announcer.drop();
      } else {
        announcer.reconnect();
      }
    }
  });
});
