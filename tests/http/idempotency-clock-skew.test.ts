import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpServer } from '../../src/infrastructure/http/http-server.js';
import { eventually } from '../support/eventually.js';
import { FakeClock, postJson, startApi, startBackend, type TestApi, type TestBackend } from './support/command-api.fixture.js';

/**
 * Two command API processes on one database, one clock 90 s ahead of the other: more than the
 * 60-second lease. Leases run on the database's clock, so the one ahead sees a claim the other
 * still holds as held.
 */
describe('Idempotency-Key across processes whose clocks disagree', () => {
  let backend: TestBackend;
  let behind: TestApi;
  let ahead: TestApi;
  /** Runs of the test route, on either process. */
  let runs = 0;
  let finishFirstRun = () => {};
  const firstRunMayFinish = new Promise<void>((resolve) => {
    finishFirstRun = resolve;
  });

  // Only the first run waits: a second one, were there one, would answer at once.
  const slowRoute = (app: HttpServer) => {
    app.post('/test/payouts', async (_request, reply) => {
      runs += 1;
      if (runs === 1) await firstRunMayFinish;
      return reply.code(201).send({ run: runs });
    });
  };
  const send = (api: TestApi, key: string) => postJson(`${api.url}/test/payouts`, { amount: 100 }, { 'idempotency-key': key });
  async function claimOf(key: string): Promise<string | undefined> {
    const row = await backend.idempotencyDb.selectFrom('idempotency_keys').select('status').where('key', '=', key).executeTakeFirst();
    return row?.status;
  }

  beforeAll(async () => {
    backend = await startBackend();
    behind = await startApi(backend, { routes: slowRoute, clock: new FakeClock() });
    const clockAhead = new FakeClock();
    clockAhead.advance(90_000);
    ahead = await startApi(backend, { routes: slowRoute, clock: clockAhead });
  });
  afterAll(async () => {
    finishFirstRun();
    await ahead.close();
    await behind.close();
    await backend.close();
  });

  it('answers 409 to a retry sent to the process ahead while the first request still runs on the other, and runs the route once', async () => {
    const key = randomUUID();
    const first = send(behind, key);
    let retry: Awaited<ReturnType<typeof send>> | undefined;
    try {
      expect(await eventually(async () => (await claimOf(key)) === 'in_flight', 10_000, 'the first request to claim its key')).toBe(true);
      retry = await send(ahead, key);
    } finally {
      finishFirstRun();
    }

    expect(retry.status).toBe(409);
    expect(retry.body.type).toBe('https://bookable.example/problems/idempotency-key-in-flight');
    expect((await first).status).toBe(201);
    const later = await send(ahead, key);
    expect(later.status).toBe(201);
    expect(later.headers.get('idempotent-replayed')).toBe('true');
    expect(runs).toBe(1);
  });
});
