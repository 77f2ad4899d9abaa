import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createHttpServer } from '../../src/infrastructure/http/http-server.js';
import { freePort } from '../../src/infrastructure/postgres/embedded-postgres.js';
import { createTestDatabase } from '../support/database.js';
import { childEnv } from '../support/child-env.js';
import { listingInput } from '../support/command-side.js';
import { handMadeJwt } from './support/command-api.fixture.js';
import { sleep } from '../../src/application/sleep.js';

/** The HTTP server both APIs are built on, with no routes of theirs: a test adds its own. */
function bareServer() {
  return createHttpServer({
    logger: pino({ level: 'silent' }),
    openApi: { title: 't', description: 't', version: '1' },
    security: { corsOrigins: [], rateLimitMax: 10_000, strict: { prefixes: [], max: 10_000 } },
    auth: { secret: 'x'.repeat(40), issuer: 'i', audience: 'a', accessTokenTtlSeconds: 60 },
    probes: [],
  });
}

describe('graceful shutdown', () => {
  it('lets 20 requests in flight finish with 2xx, and answers a new one with 503', async () => {
    const app = await bareServer();
    let started = 0;
    app.get('/slow', async () => {
      started += 1;
      await sleep(300);
      return { done: true };
    });
    app.get('/fast', async () => ({ ok: true }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    const url = typeof address === 'object' && address ? `http://127.0.0.1:${address.port}/slow` : '';

    const inFlight = Array.from({ length: 20 }, () => fetch(url).then((response) => response.status));
    // In flight means in a handler: on a machine busy with the rest of the suite, a fixed pause
    // let the drain begin before most of them had even arrived.
    while (started < 20) await sleep(5);
    // What the process does on SIGTERM: drain, then close.
    const drained = app.drain(5_000);
    const late = await fetch(url.replace('/slow', '/fast'));

    expect(late.status).toBe(503);
    expect(late.headers.get('retry-after')).toBe('1');
    expect(await Promise.all(inFlight)).toEqual(Array.from({ length: 20 }, () => 200));
    await drained;
    await app.close();
  });

  it('does not wait at a drain for a request whose client hung up long before', async () => {
    const app = await bareServer();
    app.get('/slow', async () => {
      await sleep(300);
      return { done: true };
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const address = app.server.address();
    const url = typeof address === 'object' && address ? `http://127.0.0.1:${address.port}/slow` : '';
    const hangUp = new AbortController();
    const abandoned = fetch(url, { signal: hangUp.signal }).catch(() => 'hung up');
    await sleep(50);
    hangUp.abort();
    expect(await abandoned).toBe('hung up');
    await sleep(500);

    const started = performance.now();
    await app.drain(3_000);
    expect(performance.now() - started).toBeLessThan(1_000);
    await app.close();
  });

  it('on SIGTERM, the service commits what it accepted, checkpoints included, and exits 0', async () => {
    const database = await createTestDatabase();
    const [commandPort, queryPort] = [await freePort(), await freePort()];
    const secret = 'shutdown-secret-shutdown-secret-shutdown-secret';
    // No load shedding: beside the rest of the suite, a process just started under tsx can lag past
    // its event-loop threshold and answer 503, which is shedding's test (load-shedding), not this one's.
    const shedding = { SHED_EVENT_LOOP_DELAY_MS: '0' };
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/infrastructure/main.ts'], {
      env: childEnv({ DATABASE_URL: database.url, COMMAND_PORT: String(commandPort), QUERY_PORT: String(queryPort), JWT_SECRET: secret, LOG_LEVEL: 'warn', ...shedding }),
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      for (let ready = false; !ready; ) {
        ready = await fetch(`http://127.0.0.1:${queryPort}/health/ready`).then((response) => response.ok, () => false);
        if (!ready) await sleep(200);
      }
      const now = Math.floor(Date.now() / 1000);
      const token = handMadeJwt({ sub: randomUUID(), roles: ['OWNER'], iss: 'bookable', aud: 'bookable-api', iat: now, exp: now + 600 }, { key: secret });
      const created = await Promise.all(
        Array.from({ length: 20 }, () =>
          fetch(`http://127.0.0.1:${commandPort}/v1/listings`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
            body: JSON.stringify(listingInput),
          }).then((response) => response.status),
        ),
      );
      expect(created).toEqual(Array.from({ length: 20 }, () => 201));
      // Both APIs serve the one process's metrics, as main.ts wires them for the all role.
      for (const port of [commandPort, queryPort]) {
        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        for (const name of [
          'http_request_duration_seconds',
          'commands_total',
          'command_duration_seconds',
          'event_append_duration_seconds',
          'idempotent_replays_total',
          'stripe_webhook_events_total',
          'query_cache_lookups_total',
          'projection_lag_seconds',
          'process_manager_stalled_seconds',
          'process_cpu_user_seconds_total',
        ]) {
          expect(metrics, `${name} on port ${port}`).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
        }
        expect(metrics).toContain('commands_total{aggregate="listing",command="CreateListing",outcome="accepted"} 20');
      }
      child.kill('SIGTERM');
      expect(await exited).toBe(0);

      const client = new pg.Client(database.url);
      await client.connect();
      try {
        // Every row the read model has is covered by its checkpoint, and nothing beyond it: the
        // batch in flight at SIGTERM committed whole (or not at all), rows and checkpoint together.
        const { rows } = await client.query<{ rows: string; processed: string }>(
          `SELECT (SELECT count(*) FROM rm_listings.listings)::text AS rows,
                  (SELECT events_processed FROM projection_checkpoints WHERE name = 'listings' AND active)::text AS processed`,
        );
        expect(rows[0]?.rows).toBe(rows[0]?.processed);
      } finally {
        await client.end();
      }
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await database.drop();
    }
  });

  /** main.ts in a process of its own on `database`, with `env` on top; what it printed and how it ended. */
  function service(database: { url: string }, env: Record<string, string>) {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/infrastructure/main.ts'], {
      env: childEnv({ DATABASE_URL: database.url, JWT_SECRET: 'shutdown-secret-shutdown-secret-shutdown-secret', LOG_LEVEL: 'warn', SHED_EVENT_LOOP_DELAY_MS: '0', ...env }),
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { child, exited };
  }

  it('on SIGTERM with a read in flight, both APIs turn new requests away at once; what outlasts the grace period is cut, and the process exits 0', async () => {
    const database = await createTestDatabase();
    const [commandPort, queryPort] = [await freePort(), await freePort()];
    // A read that waits for a position never reached: longer than the grace period.
    const { child, exited } = service(database, {
      COMMAND_PORT: String(commandPort),
      QUERY_PORT: String(queryPort),
      SHUTDOWN_GRACE_MS: '1500',
      QUERY_CONSISTENCY_TIMEOUT_MS: '20000',
    });
    try {
      for (let ready = false; !ready; ) {
        ready = await fetch(`http://127.0.0.1:${queryPort}/health/ready`).then((response) => response.ok, () => false);
        if (!ready) await sleep(200);
      }
      const held = fetch(`http://127.0.0.1:${queryPort}/v1/listings`, { headers: { 'consistency-position': '99999999999.1' } }).then(
        (response) => response.status,
        () => 'cut',
      );
      await sleep(300);
      const stopping = performance.now();
      child.kill('SIGTERM');
      await sleep(300);
      const write = await fetch(`http://127.0.0.1:${commandPort}/v1/listings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(write.status).toBe(503);
      const ready = await fetch(`http://127.0.0.1:${commandPort}/health/ready`);
      expect([ready.status, await ready.json()]).toEqual([503, { status: 'unavailable', checks: { shutdown: 'stopping' } }]);
      expect((await fetch(`http://127.0.0.1:${commandPort}/health/live`)).status).toBe(200);

      expect(await exited).toBe(0);
      expect(performance.now() - stopping).toBeLessThan(6_000);
      expect(await held).toBe('cut');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await database.drop();
    }
  });

  it('exits 1, and does exit, when a role cannot start (its port is taken)', async () => {
    const database = await createTestDatabase();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const address = taken.address();
    const queryPort = typeof address === 'object' && address ? address.port : 0;
    const { child, exited } = service(database, { COMMAND_PORT: String(await freePort()), QUERY_PORT: String(queryPort) });
    try {
      const code = await Promise.race([exited, sleep(30_000).then(() => 'still running')]);
      expect(code).toBe(1);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      taken.close();
      await database.drop();
    }
  });

  it('the projector role serves its health and its projections\' metrics, and stops on SIGTERM with exit 0', async () => {
    const database = await createTestDatabase();
    const port = await freePort();
    const { child, exited } = service(database, { ROLE: 'projector', PROJECTOR_PORT: String(port) });
    try {
      const base = `http://127.0.0.1:${port}`;
      let ready: Response | undefined;
      for (let tries = 0; tries < 150 && ready?.status !== 200; tries++) {
        ready = await fetch(`${base}/health/ready`).catch(() => undefined);
        if (ready?.status !== 200) await sleep(200);
      }
      expect(await ready?.json()).toEqual({ status: 'ready', checks: { database: 'ok', migrations: 'ok', 'event store': 'ok', projections: 'ok' } });
      // Each projection shows once its projector has taken its generation, a moment after start.
      let metrics = '';
      for (let tries = 0; tries < 150 && !metrics.includes('projection_state{projection="listings"'); tries++) {
        if (tries > 0) await sleep(200);
        metrics = await (await fetch(`${base}/metrics`)).text();
      }
      expect(metrics).toContain('projection_state{projection="listings"');
      // What the README promises an operator of a projector process, as the process wires it.
      for (const name of [
        'projection_checkpoint_position',
        'projection_lag_events',
        'projection_lag_seconds',
        'projection_events_per_second',
        'event_store_oldest_transaction_age_seconds',
        'refund_reconciliation_pending',
        'process_manager_errors_total',
        'process_manager_stalled_seconds',
      ]) {
        expect(metrics, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
      }
      expect(metrics).toContain('process_manager_stalled_seconds{process="payment"} 0');
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await database.drop();
    }
  });
});
