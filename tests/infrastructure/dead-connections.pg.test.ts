import { sql } from 'kysely';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RecordedEvent } from '../../src/application/ports/event-store.js';
import { PgEventStore, type PgEventStoreOptions } from '../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createKysely, createPool, idleTransactionTimeoutMs, migrateToLatest } from '../../src/infrastructure/postgres/database.js';
import { PgAdvisoryLocks } from '../../src/infrastructure/projections/pg-advisory-locks.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * A TCP relay to the database that can go silent, as a host that lost power or its network does:
 * nothing passes either way any more and no connection is closed, so the server is told nothing.
 */
class SilencingRelay {
  /** Each connection, with the text its client has sent so far. */
  private readonly pairs: Array<{ client: net.Socket; upstream: net.Socket; sent: string }> = [];
  /** Connections accepted while hanging, and whether their client has given up on them. */
  readonly hung: Array<{ socket: net.Socket; closed: boolean }> = [];
  private hanging = false;
  private readonly server: net.Server;

  constructor(private readonly target: URL) {
    this.server = net.createServer((client) => {
      if (this.hanging) {
        // Accepted, then never answered: a connect waits for the server's reply.
        const hung = { socket: client, closed: false };
        client.on('error', () => undefined);
        client.on('close', () => (hung.closed = true));
        // Read and dropped, so that the client's end is seen.
        client.resume();
        this.hung.push(hung);
        return;
      }
      const upstream = net.connect(Number(target.port || 5432), target.hostname);
      client.pipe(upstream).pipe(client);
      for (const socket of [client, upstream]) socket.on('error', () => undefined);
      const pair = { client, upstream, sent: '' };
      client.on('data', (chunk: Buffer) => (pair.sent += chunk.toString('latin1')));
      this.pairs.push(pair);
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('the relay has no TCP address');
    const url = new URL(this.target);
    url.hostname = '127.0.0.1';
    url.port = String(address.port);
    return url.toString();
  }

  /** Silences every connection so far, or those whose client has sent `only`. */
  silence(only?: string): void {
    for (const { client, upstream, sent } of this.pairs) {
      if (only !== undefined && !sent.includes(only)) continue;
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /** New connections are accepted but go nowhere, or again reach the database. */
  hang(hanging: boolean): void {
    this.hanging = hanging;
  }

  /** Whether some connection made since `since` pairs has sent `text`. */
  sentSince(since: number, text: string): boolean {
    return this.pairs.slice(since).some(({ sent }) => sent.includes(text));
  }

  get connections(): number {
    return this.pairs.length;
  }

  async close(): Promise<void> {
    for (const { socket } of this.hung) socket.destroy();
    for (const { client, upstream } of this.pairs) for (const socket of [client, upstream]) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

describe('a process that dies without closing its connections', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  it("gives up its projection lock once its heartbeats stop, so a standby takes over within seconds, not TCP keepalive's hours", async () => {
    const relay = new SilencingRelay(new URL(database.url));
    const key = 4_242_424_242n;
    const stop = new AbortController();
    try {
      const dying = new PgAdvisoryLocks({ connectionString: await relay.listen(), heartbeatMs: 200, goneAfterMs: 1000 });
      const held = await dying.acquire(key, stop.signal);
      expect(held).toBeDefined();

      relay.silence();
      const standby = new PgAdvisoryLocks({ connectionString: database.url, retryMs: 100 });
      const takenAt = Date.now();
      const taken = await standby.acquire(key, AbortSignal.any([stop.signal, AbortSignal.timeout(8000)]));

      expect(taken).toBeDefined();
      expect(Date.now() - takenAt).toBeLessThan(5000);
      await taken?.release();
    } finally {
      stop.abort();
      await relay.close();
    }
  }, 15_000);

  /**
   * A store behind the relay, with a subscriber following it: `body` runs while it follows, then
   * everything is stopped and closed.
   */
  async function withSubscribedStore(
    options: PgEventStoreOptions,
    body: (fixture: { relay: SilencingRelay; store: PgEventStore; received: RecordedEvent[] }) => Promise<void>,
  ): Promise<void> {
    const relay = new SilencingRelay(new URL(database.url));
    const pool = createPool(await relay.listen(), 4);
    await migrateToLatest(pool);
    const store = new PgEventStore(pool, options);
    const stop = new AbortController();
    const received: RecordedEvent[] = [];
    const following = (async () => {
      for await (const recorded of store.subscribeToAll({ signal: stop.signal })) received.push(recorded);
    })();
    try {
      await body({ relay, store, received });
    } finally {
      stop.abort();
      await following;
      await store.close();
      await pool.end();
      await relay.close();
    }
  }

  it("notices its event store's LISTEN connection cut off silently and listens again, so subscribers are woken within seconds, not at each poll", async () => {
    // A long fallback poll, so that only a notification can deliver promptly.
    await withSubscribedStore({ pollIntervalMs: 10_000, listenerHeartbeatMs: 200, channel: 'silenced_test' }, async ({ relay, store, received }) => {
      const appendAndTime = async () => {
        const appendedAt = Date.now();
        const count = received.length;
        await store.appendToStream(`silenced-${randomUUID()}`, [{ id: randomUUID(), type: 'E', data: {}, metadata: {} }]);
        await vi.waitFor(() => expect(received).toHaveLength(count + 1), { timeout: 12_000, interval: 5 });
        return Date.now() - appendedAt;
      };
      expect(await appendAndTime()).toBeLessThan(1000);

      // The listener's connection goes silent (a NAT or load balancer forgot it): no error, no end.
      relay.silence('LISTEN silenced_test');
      expect(await appendAndTime()).toBeLessThan(3000);
      expect(await appendAndTime()).toBeLessThan(1000);
    });
  }, 30_000);

  it('gives up a LISTEN reconnect that the database never answers, and listens again once it does', async () => {
    // The retry after a failed connect waits for a poll (see `ChannelListener`): a short one here.
    await withSubscribedStore({ pollIntervalMs: 1000, listenerHeartbeatMs: 200, channel: 'hung_test' }, async ({ relay }) => {
      await vi.waitFor(() => expect(relay.sentSince(0, 'LISTEN hung_test')).toBe(true), { timeout: 5000 });

      // The LISTEN connection is cut off, and the host takes connections but answers none of them.
      relay.hang(true);
      relay.silence('LISTEN hung_test');
      await vi.waitFor(() => expect(relay.hung).toHaveLength(1), { timeout: 5000, interval: 5 });
      const [attempt] = relay.hung;
      const attemptedAt = Date.now();
      await vi.waitFor(() => expect(attempt?.closed).toBe(true), { timeout: 5000, interval: 5 });
      expect(Date.now() - attemptedAt).toBeLessThan(1000);

      const before = relay.connections;
      relay.hang(false);
      await vi.waitFor(() => expect(relay.sentSince(before, 'LISTEN hung_test')).toBe(true), { timeout: 5000, interval: 5 });
    });
  }, 30_000);

  it('has the server end a transaction of ours (kysely\'s) left idle, which would otherwise hold back every event subscriber, keeping the URL\'s own options', async () => {
    const url = new URL(database.url);
    url.searchParams.set('options', '-c statement_timeout=4321');
    const pool: pg.Pool = createPool(url.toString(), 1);
    try {
      const { rows } = await sql<{ name: string; setting: string }>`
        select name, setting from pg_settings where name in ('idle_in_transaction_session_timeout', 'statement_timeout') order by name
      `.execute(createKysely(pool));
      expect(rows).toEqual([
        { name: 'idle_in_transaction_session_timeout', setting: String(idleTransactionTimeoutMs) },
        { name: 'statement_timeout', setting: '4321' },
      ]);
    } finally {
      await pool.end();
    }
  });
});
