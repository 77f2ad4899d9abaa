import type pg from 'pg';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { EventStore } from '../../application/ports/event-store.js';
import type { PersonalDataVault } from '../../application/privacy/personal-data-vault.js';
import type { Clock } from '../../application/ports/clock.js';
import type { Database } from '../../projections/read-models.js';
import type { CheckpointNotifications } from '../../projections/runtime/wait-for-position.js';
import type { TrustedProxies } from '../config/trusted-proxies.js';
import type { Logger } from '../logging/logger.js';
import { currentRolesOf } from '../../projections/users/users.queries.js';
import { createKysely } from '../postgres/database.js';
import { accessTokenTtlSeconds } from './command-api.js';
import { createHttpServer, type HttpServer } from './http-server.js';
import type { ReadinessProbe } from './plugins/health.plugin.js';
import type { LoadSheddingOptions } from './plugins/load-shedding.plugin.js';
import { QueryCache, type QueryCacheOptions } from './query-cache.js';
import { cachedRead, consistentWith, CursorCodec, keepCachedAnswers, type QueryRoutesOptions } from './query-context.js';
import { adminQueryRoutes } from './routes/admin.query-routes.js';
import { appointmentQueryRoutes } from './routes/appointments.query-routes.js';
import { auditQueryRoutes } from './routes/audit.query-routes.js';
import { bookingQueryRoutes } from './routes/bookings.query-routes.js';
import { doctorQueryRoutes } from './routes/doctors.query-routes.js';
import { listingQueryRoutes } from './routes/listings.query-routes.js';
import { paymentQueryRoutes } from './routes/payments.query-routes.js';
import { userQueryRoutes } from './routes/users.query-routes.js';

export type QueryApiDeps = {
  readonly logger: Logger;
  readonly clock: Clock;
  /** The HS256 key the command API signs access tokens with; cursors are MACed with a key derived from it. */
  readonly secret: string;
  readonly issuer: string;
  readonly audience: string;
  readonly corsOrigins: readonly string[];
  readonly rateLimitMax: number;
  /** Proxies whose `X-Forwarded-For` entries name the client (`TRUST_PROXY`); unset: none. */
  readonly trustProxy?: TrustedProxies;
  /** The read-model database, the only thing the query API shares with the rest. The caller closes it. */
  readonly pool: pg.Pool;
  /** The event log as stored, for the audit API (PostgreSQL or EventStoreDB, whichever holds it). */
  readonly events: EventStore;
  /** Reveals personal fields of events the audit API shows (or `[erased]`). */
  readonly personalData: PersonalDataVault;
  /** Checkpoint notifications (one `LISTEN` connection per process, `PgCheckpointListener`). */
  readonly notifications: CheckpointNotifications;
  /** Longest wait for a `Consistency-Position` (`QUERY_CONSISTENCY_TIMEOUT_MS`). */
  readonly consistencyTimeoutMs: number;
  readonly probes: readonly ReadinessProbe[];
  /** When to shed load with 503s (`SHED_*` settings). */
  readonly loadShedding?: LoadSheddingOptions;
  readonly metricsRegistry?: Registry;
  /** How much the query cache keeps, and for how long at most (`QUERY_CACHE_*`); default 32 MiB, 5 s. */
  readonly queryCache?: Pick<QueryCacheOptions, 'maxBytes' | 'maxAgeMs'>;
  /** Whether a token's subject was lately erased (`ErasedSubjects.has`); unset, tokens outlive erasure until they expire. */
  readonly isErased?: (subjectId: string) => boolean;
};

/**
 * The read side over HTTP (API.md, "Query API"): serves the read models, never appends events.
 * Same conventions as the command API (auth, problem+json, /docs, health, metrics); built
 * here, listened on by the caller.
 */
export async function buildQueryApi(deps: QueryApiDeps): Promise<HttpServer> {
  const readModels = createKysely<Database>(deps.pool);
  const app = await createHttpServer({
    logger: deps.logger,
    openApi: { title: 'bookable query API', description: 'Read models; `Consistency-Position` for read-your-writes.', version: '1' },
    security: { corsOrigins: deps.corsOrigins, rateLimitMax: deps.rateLimitMax },
    // It verifies the command API's access tokens; it never issues any.
    auth: {
      secret: deps.secret,
      issuer: deps.issuer,
      audience: deps.audience,
      accessTokenTtlSeconds,
      currentRoles: (actor) => currentRolesOf(readModels, actor),
      ...(deps.isErased ? { isErased: deps.isErased } : {}),
    },
    probes: deps.probes,
    trustProxy: deps.trustProxy ?? false,
    ...(deps.metricsRegistry ? { metricsRegistry: deps.metricsRegistry } : {}),
    ...(deps.loadShedding ? { loadShedding: deps.loadShedding } : {}),
  });
  const checkpoints = createKysely<unknown>(deps.pool);
  const consistency = { db: checkpoints, notifications: deps.notifications, timeoutMs: deps.consistencyTimeoutMs };
  const cache = queryCache(deps);
  app.addHook('onSend', keepCachedAnswers(cache));
  app.addHook('onClose', async () => cache.close());
  const routes: QueryRoutesOptions = {
    db: readModels,
    clock: deps.clock,
    cursors: new CursorCodec(deps.secret),
    consistentWith: (projections) => consistentWith(consistency, projections),
    cachedRead: (projections, options) => cachedRead(consistency, cache, projections, options),
  };

  await app.register(auditQueryRoutes, { ...routes, pool: deps.pool, events: deps.events, personalData: deps.personalData, consistencyTimeoutMs: deps.consistencyTimeoutMs });
  await app.register(listingQueryRoutes, { prefix: '/v1/listings', ...routes });
  await app.register(bookingQueryRoutes, { prefix: '/v1/bookings', ...routes });
  await app.register(paymentQueryRoutes, { prefix: '/v1/payments', ...routes });
  await app.register(doctorQueryRoutes, { prefix: '/v1/doctors', ...routes });
  await app.register(appointmentQueryRoutes, { prefix: '/v1/appointments', ...routes });
  await app.register(userQueryRoutes, { prefix: '/v1/users', ...routes });
  await app.register(adminQueryRoutes, { prefix: '/v1/admin', checkpoints, now: () => deps.clock.now() });
  return app;
}

function queryCache(deps: QueryApiDeps): QueryCache {
  const registers = deps.metricsRegistry ? [deps.metricsRegistry] : [];
  const lookups = new Counter({
    name: 'query_cache_lookups_total',
    help: 'Query API answers looked for in the query cache, by outcome (hit: kept and still fresh)',
    labelNames: ['outcome'],
    registers,
  });
  const cache = new QueryCache(deps.notifications, {
    maxBytes: 32 * 1024 * 1024,
    maxAgeMs: 5000,
    ...deps.queryCache,
    onLookup: (outcome) => lookups.inc({ outcome }),
  });
  new Gauge({
    name: 'query_cache_bytes',
    help: 'Bytes the query cache counts for its answers: two per character, plus each entry\'s overhead',
    registers,
    collect() {
      this.set(cache.size.bytes);
    },
  });
  return cache;
}
