import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/application/ports/clock.js';
import type { HttpServer } from '../../src/infrastructure/http/http-server.js';
import { problemContentType, problemTypeBase } from '../../src/infrastructure/http/problem.js';
import { buildQueryApi } from '../../src/infrastructure/http/query-api.js';
import { projectionsProbe } from '../../src/infrastructure/http/readiness-probes.js';
import { PgCheckpointListener } from '../../src/infrastructure/projections/pg-checkpoint-listener.js';
import { readModelProjections } from '../../src/projections/read-models.js';
import { createHarness, eventually, type Harness } from '../projections/support/runtime-harness.js';
import { testQueryApiOptions } from './support/query-api.fixture.js';

/**
 * The query role started on a fresh database (migrations applied) before any projector, as
 * `docker compose` may start them: no read model's tables exist yet.
 */
describe('the query API before a projector has built the read models', () => {
  let harness: Harness;
  let listener: PgCheckpointListener;
  let app: HttpServer;

  beforeAll(async () => {
    harness = await createHarness();
    listener = new PgCheckpointListener({ connectionString: harness.url, reconnectMs: 100 });
    await listener.start();
    const names = readModelProjections.map((projection) => projection.name);
    app = await buildQueryApi({
      ...testQueryApiOptions,
      clock: systemClock,
      pool: harness.pool,
      events: harness.store,
      personalData: harness.vault,
      notifications: listener,
      consistencyTimeoutMs: 5000,
      probes: [projectionsProbe(harness.db, names, 30_000, () => systemClock.now())],
    });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await listener.close();
    await harness.close();
  });

  it('is not ready, naming the read models; reads answer 503 with Retry-After, not 500; once built, both serve', async () => {
    const ready = await app.inject({ url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
    const { checks } = ready.json<{ checks: { projections: string } }>();
    expect(checks.projections).toMatch(/^not built yet: /);
    expect(checks.projections.slice('not built yet: '.length).split(', ').sort()).toEqual(readModelProjections.map(({ name }) => name).sort());

    for (const url of ['/v1/listings', '/v1/listings/some-listing', '/v1/doctors']) {
      const response = await app.inject({ url });
      expect(response.statusCode, url).toBe(503);
      expect(response.headers['content-type'], url).toContain(problemContentType);
      expect(response.headers['retry-after'], url).toBeDefined();
      expect(response.json(), url).toMatchObject({ type: `${problemTypeBase}read-model-not-ready`, status: 503 });
    }

    harness.startRuntime(readModelProjections);
    await eventually(async () => (await app.inject({ url: '/health/ready' })).statusCode === 200, 15_000, 'the query API to be ready');
    const listings = await app.inject({ url: '/v1/listings' });
    expect(listings.statusCode).toBe(200);
    expect(listings.json()).toEqual({ items: [], nextCursor: null });
  });
});
