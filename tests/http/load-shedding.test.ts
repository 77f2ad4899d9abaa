import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer, type HttpServer } from '../../src/infrastructure/http/http-server.js';
import { sleep } from '../../src/application/sleep.js';

function busy(ms: number) {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

describe('load shedding', () => {
  let app: HttpServer;
  beforeAll(async () => {
    app = await createHttpServer({
      logger: pino({ level: 'silent' }),
      openApi: { title: 't', description: 't', version: '1' },
      security: { corsOrigins: [], rateLimitMax: 10_000, strict: { prefixes: [], max: 10_000 } },
      auth: { secret: 'x'.repeat(40), issuer: 'i', audience: 'a', accessTokenTtlSeconds: 60 },
      probes: [],
      loadShedding: { maxEventLoopDelayMs: 50, maxHeapUsedBytes: 0, retryAfterSeconds: 3 },
    });
    app.get('/work', async () => ({ ok: true }));
    await app.ready();
  });
  afterAll(() => app.close());

  it('turns new requests away with 503 and Retry-After while the event loop lags, but still answers probes', async () => {
    expect((await app.inject('/work')).statusCode).toBe(200);
    busy(400);
    // Let the overdue sampling timer see the lag before the next request arrives.
    await sleep(1);
    const shed = await app.inject('/work');
    expect(shed.statusCode).toBe(503);
    expect(shed.headers['retry-after']).toBe('3');
    expect(shed.headers['content-type']).toContain('application/problem+json');
    expect((await app.inject('/health/live')).statusCode).toBe(200);

    await sleep(400);
    expect((await app.inject('/work')).statusCode).toBe(200);
  });
});
