import { pino } from 'pino';
import type { Registry } from 'prom-client';
import type { Actor } from '../../../src/application/metadata.js';
import type { HttpServer } from '../../../src/infrastructure/http/http-server.js';
import { postgresProbe } from '../../../src/infrastructure/http/plugins/health.plugin.js';
import { buildQueryApi, type QueryApiDeps } from '../../../src/infrastructure/http/query-api.js';
import { PgCheckpointListener } from '../../../src/infrastructure/projections/pg-checkpoint-listener.js';
import { readModelProjections } from '../../../src/projections/read-models.js';
import { hasProcessed, type CheckpointNotifications } from '../../../src/projections/runtime/wait-for-position.js';
import { comparePositions, formatPosition, maxPosition, START, type Position } from '../../../src/application/ports/position.js';
import { startReadModels, type ReadModelHarness } from '../../projections/support/read-models.harness.js';
import { eventually } from '../../projections/support/runtime-harness.js';

export const secret = 'query-test-secret-that-is-long-enough-0123456789';

/** What every test query API is built with: the signing that `auth` and the command fixture use, quiet logs, no CORS, no rate limit to speak of. */
export const testQueryApiOptions = {
  logger: pino({ level: 'silent' }),
  secret,
  issuer: 'bookable-test',
  audience: 'bookable-test-api',
  corsOrigins: [],
  rateLimitMax: 100_000,
} as const;

export type QueryApiFixture = ReadModelHarness & {
  readonly app: HttpServer;
  /** A bearer header for `actor`, signed as the command API would. */
  auth(actor: Actor): { authorization: string };
  /** `Consistency-Position` for everything appended so far. */
  consistency(): { 'consistency-position': string };
};

/**
 * The query API over every read model, the projectors running, and the real use cases on a fake
 * clock to produce events; requests go through `app.inject`.
 */
export async function startQueryApi(
  options: {
    consistencyTimeoutMs?: number;
    queryCache?: QueryApiDeps['queryCache'];
    metricsRegistry?: Registry;
    /** What the query API hears of the checkpoint notifications, given the real ones. */
    notifications?: (heard: CheckpointNotifications) => CheckpointNotifications;
  } = {},
): Promise<QueryApiFixture> {
  const h = await startReadModels(readModelProjections);
  const listener = new PgCheckpointListener({ connectionString: h.harness.url, reconnectMs: 100 });
  await listener.start();
  const heard = new Map<string, Position>();
  const stopHearing = listener.subscribe(({ name, position }) => heard.set(name, maxPosition(heard.get(name) ?? START, position)));
  const app = await buildQueryApi({
    ...testQueryApiOptions,
    clock: h.clock,
    pool: h.harness.pool,
    events: h.harness.store,
    personalData: h.harness.vault,
    notifications: options.notifications ? options.notifications(listener) : listener,
    consistencyTimeoutMs: options.consistencyTimeoutMs ?? 5000,
    probes: [postgresProbe(h.harness.pool)],
    ...(options.queryCache ? { queryCache: options.queryCache } : {}),
    ...(options.metricsRegistry ? { metricsRegistry: options.metricsRegistry } : {}),
  });
  await app.ready();
  return {
    ...h,
    app,
    auth: (actor) => ({ authorization: `Bearer ${app.issueAccessToken(actor).accessToken}` }),
    consistency: () => ({ 'consistency-position': formatPosition(h.head()) }),
    // Settled once the query API has heard of the commits too: their notifications can come
    // after the rows, and a commit heard after an answer was kept ends that answer's life.
    async settle() {
      await h.settle();
      const head = h.head();
      if (comparePositions(head, START) === 0) return;
      await eventually(async () => readModelProjections.every(({ name }) => hasProcessed(heard.get(name), head)), 15_000, "the query API to hear of the read models' commits");
    },
    async close() {
      stopHearing();
      await app.close();
      await listener.close();
      await h.close();
    },
  };
}
