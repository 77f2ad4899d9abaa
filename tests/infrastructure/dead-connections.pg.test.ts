import { sql } from 'kysely';
import net from 'node:net';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKysely, createPool, idleTransactionTimeoutMs } from '../../src/infrastructure/postgres/database.js';
import { PgAdvisoryLocks } from '../../src/infrastructure/projections/pg-advisory-locks.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

/**
 * A TCP relay to the database that can go silent, as a host that lost power or its network does:
 * nothing passes either way any more and no connection is closed, so the server is told nothing.
 */
class SilencingRelay {
  private readonly pairs: Array<[net.Socket, net.Socket]> = [];
  private readonly server: net.Server;

  constructor(private readonly target: URL) {
    this.server = net.createServer((client) => {
      const upstream = net.connect(Number(target.port || 5432), target.hostname);
      client.pipe(upstream).pipe(client);
      for (const socket of [client, upstream]) socket.on('error', () => undefined);
      this.pairs.push([client, upstream]);
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

  silence(): void {
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  async close(): Promise<void> {
    for (const pair of this.pairs) for (const socket of pair) socket.destroy();
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
