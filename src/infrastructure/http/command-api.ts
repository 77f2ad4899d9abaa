import { currentRoles } from '../../application/authorization/registered-users.js';
import type { Kysely } from 'kysely';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { CommandSide } from '../../application/command-handlers.js';
import type { IdentityService } from '../../application/identity/identity.service.js';
import type { ErasureDeps } from '../../application/privacy/erase-subject.use-case.js';
import type { Clock } from '../../application/ports/clock.js';
import type { IdempotencyTables } from '../idempotency/idempotency.tables.js';
import { idempotencyPlugin } from '../idempotency/idempotency.plugin.js';
import { idempotencyMetrics } from '../metrics/idempotency-metrics.js';
import { PgIdempotencyStore } from '../idempotency/pg-idempotency-store.js';
import type { TrustedProxies } from '../config/trusted-proxies.js';
import type { Logger } from '../logging/logger.js';
import { noQuerySchema } from './command-result.js';
import { createHttpServer, type HttpServer } from './http-server.js';
import type { ReadinessProbe } from './plugins/health.plugin.js';
import type { LoadSheddingOptions } from './plugins/load-shedding.plugin.js';
import { adminRoutes } from './routes/admin.routes.js';
import { appointmentRoutes } from './routes/appointments.routes.js';
import { authRoutes } from './routes/auth.routes.js';
import { bookingRoutes } from './routes/bookings.routes.js';
import { listingRoutes } from './routes/listings.routes.js';
import { paymentApi, type PaymentApiDeps } from './routes/payments.routes.js';

/** Access tokens live 15 minutes; a client refreshes them with its refresh token. */
export const accessTokenTtlSeconds = 15 * 60;

export type CommandApiDeps = {
  readonly logger: Logger;
  readonly clock: Clock;
  /** HS256 key for access tokens; idempotency's hashing and encryption keys derive from it too. */
  readonly secret: string;
  readonly issuer: string;
  readonly audience: string;
  readonly corsOrigins: readonly string[];
  readonly rateLimitMax: number;
  readonly authRateLimitMax: number;
  /** Proxies whose `X-Forwarded-For` entries name the client (`TRUST_PROXY`); unset: none. */
  readonly trustProxy?: TrustedProxies;
  readonly idempotencyTtlHours: number;
  /** How long an Idempotency-Key's claim outlives a request that stopped renewing it (died); default 60 s. */
  readonly idempotencyLeaseMs?: number;
  /** The database holding the idempotency keys. */
  readonly db: Kysely<IdempotencyTables>;
  readonly identity: IdentityService;
  /** The command handlers and policies the listing, booking and appointment routes run on. */
  readonly side: CommandSide;
  /** The payment provider and the Stripe webhook's secret; unset, the API has no payment routes. */
  readonly payments?: PaymentApiDeps;
  /** What must answer before the API takes traffic; the database at least. */
  readonly probes: readonly ReadinessProbe[];
  /** The read-model database, for the admin's rebuild requests; without it there is no such route. */
  readonly projections?: { readonly db: Kysely<unknown>; readonly names: readonly string[] };
  /** What erasing a person's personal data takes; without it there is no such route. */
  readonly erasure?: ErasureDeps;
  /** Whether a token's subject was lately erased (`ErasedSubjects.has`); unset, tokens outlive erasure until they expire. */
  readonly isErased?: (subjectId: string) => boolean;
  /** When to shed load with 503s (`SHED_*` settings). */
  readonly loadShedding?: LoadSheddingOptions;
  /** Where `/metrics` reads from; other parts of the process (commands, projectors) publish there too. */
  readonly metricsRegistry?: Registry;
};

/** The write side over HTTP (API.md, "Command API"); built here, listened on by the caller. */
export async function buildCommandApi(deps: CommandApiDeps): Promise<HttpServer> {
  // Made here when none is given (as the metrics plugin would), so that the replay counter is on this API's `/metrics`.
  const metricsRegistry = deps.metricsRegistry ?? defaultRegistry();
  const app = await createHttpServer({
    logger: deps.logger,
    openApi: { title: 'bookable command API', description: 'Commands: each appends events and answers where.', version: '1' },
    security: {
      corsOrigins: deps.corsOrigins,
      rateLimitMax: deps.rateLimitMax,
      strict: { prefixes: ['/v1/auth/'], max: deps.authRateLimitMax },
    },
    auth: {
      secret: deps.secret,
      issuer: deps.issuer,
      audience: deps.audience,
      accessTokenTtlSeconds,
      currentRoles: (actor) => currentRoles(deps.side.handlers.user, actor),
      ...(deps.isErased ? { isErased: deps.isErased } : {}),
    },
    probes: deps.probes,
    metricsRegistry,
    ...(deps.loadShedding ? { loadShedding: deps.loadShedding } : {}),
    trustProxy: deps.trustProxy ?? false,
  });
  await app.register(idempotencyPlugin, {
    store: new PgIdempotencyStore(deps.db, deps.secret),
    secret: deps.secret,
    clock: deps.clock,
    ttlHours: deps.idempotencyTtlHours,
    ...(deps.idempotencyLeaseMs === undefined ? {} : { leaseMs: deps.idempotencyLeaseMs }),
    onReplay: idempotencyMetrics(metricsRegistry),
  });

  // Here, not on each route, so that no command added later can forget it; a route that takes
  // parameters (the Stripe webhook) declares its own query schema. Health, metrics and docs keep theirs.
  app.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/v1/') || route.schema?.querystring !== undefined) return;
    route.schema = { ...route.schema, querystring: noQuerySchema };
  });
  await app.register(authRoutes, { prefix: '/v1/auth', identity: deps.identity });
  await app.register(listingRoutes, { prefix: '/v1/listings', side: deps.side });
  await app.register(bookingRoutes, { prefix: '/v1/bookings', side: deps.side });
  await app.register(appointmentRoutes, { side: deps.side });
  await app.register(adminRoutes, {
    prefix: '/v1/admin',
    side: deps.side,
    ...(deps.projections ? { projections: deps.projections } : {}),
    ...(deps.erasure ? { erasure: deps.erasure } : {}),
  });
  if (deps.payments) await app.register(paymentApi, { side: deps.side, rateLimitMax: deps.rateLimitMax, ...deps.payments });
  return app;
}

function defaultRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
