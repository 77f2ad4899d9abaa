import { getHeapStatistics } from 'node:v8';
import closeWithGrace from 'close-with-grace';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { createCommandHandlers, type CommandHandlers, type CommandSide } from '../application/command-handlers.js';
import { createIdentityService, type IdentityService } from '../application/identity/identity.service.js';
import { systemClock } from '../application/ports/clock.js';
import { HoldExpiryProcess } from '../application/process-managers/hold-expiry.process.js';
import { RefundReconciliation } from '../application/process-managers/refund-reconciliation.process.js';
import type { PaymentGateway } from '../application/ports/payment-gateway.js';
import { failureReport } from './config/command-line.js';
import { loadConfig, type Config } from './config/config.js';
import { accessTokenTtlSeconds, buildCommandApi } from './http/command-api.js';
import { buildQueryApi } from './http/query-api.js';
import { postgresProbe, type ReadinessProbe } from './http/plugins/health.plugin.js';
import { createOperationsServer } from './http/operations-server.js';
import { eventStoreProbe, migrationsProbe, projectionsProbe } from './http/readiness-probes.js';
import type { IdempotencyTables } from './idempotency/idempotency.tables.js';
import { Argon2PasswordHasher } from './identity/argon2-password-hasher.js';
import type { IdentityTables } from './identity/identity.tables.js';
import { PgCredentialStore } from './identity/pg-credential-store.js';
import { PgRefreshTokenStore } from './identity/pg-refresh-token-store.js';
import { PgSecurityEventLog } from './identity/pg-security-event-log.js';
import { seedUsers } from './identity/seed-users.js';
import { demoSkipped, seedDemo } from './seed/seed-demo.js';
import { loadSigningSecret } from './identity/signing-secret.js';
import { createLogger, type Logger } from './logging/logger.js';
import { commandMetrics } from './metrics/command-metrics.js';
import { processManagerMetrics, type ProcessManagerObserver } from './metrics/process-manager-metrics.js';
import { registerEventStoreMetrics } from './metrics/event-store-metrics.js';
import { webhookMetrics } from './metrics/webhook-metrics.js';
import { ErasedSubjects } from './privacy/erased-subjects.js';
import { PgRecordsOutsideTheLog } from './privacy/pg-records-outside-the-log.js';
import { startPaymentProcess } from './process-checkpoints/payment-process.runner.js';
import { createPaymentGateway } from './stripe/payment-gateway.factory.js';
import { PgCheckpointListener } from './projections/pg-checkpoint-listener.js';
import { registerProjectionMetrics } from './projections/projection-metrics.js';
import { PgEventStore } from './pg-event-store/pg-event-store.js';
import type { ProjectionStatus } from '../projections/runtime/projector-metrics.js';
import { startProjectors } from './projections/projector-runner.js';
import { rebuildReadModel } from './projections/rebuild-read-model.js';
import { parseMainCommandLine } from './main-command-line.js';
import type { Projection } from '../projections/runtime/projection.js';
import { listCheckpointsWithLag } from '../projections/runtime/projection-checkpoints.queries.js';
import { readModelProjections } from '../projections/read-models.js';
import { createKysely, createPool, migrateToLatest } from './postgres/database.js';
import { startProjectorThread, startReadModelProjectors } from './projector-thread.js';
import { openDatabase, openStorage, type Storage } from './storage.js';

/** One registry per process: every part publishes into it, each API's `/metrics` reads it. */
const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry });
const observeCommand = commandMetrics(metricsRegistry);

function loadShedding(config: Config) {
  // By default just under the heap limit the process runs with: a fixed figure above it (npm
  // start caps the heap at 384 MB) would never shed, and the process would die of its heap instead.
  const maxHeapUsedBytes = config.SHED_HEAP_USED_MB === undefined ? Math.floor(getHeapStatistics().heap_size_limit * 0.9) : config.SHED_HEAP_USED_MB * 1024 * 1024;
  return { maxEventLoopDelayMs: config.SHED_EVENT_LOOP_DELAY_MS, maxHeapUsedBytes, retryAfterSeconds: 2 };
}

const readModelNames = readModelProjections.map((projection) => projection.name);

/** Most events `projection_lag_events` counts behind a checkpoint: a scrape walks at most this many index entries per position. */
const lagEventsCap = 10_000;

/** The projection metrics of this process's projectors, with their lag in events counted in the log (PostgreSQL). */
function publishProjectionMetrics(storage: Storage, projectors: { status(): ProjectionStatus[] }): void {
  const db = createKysely<unknown>(storage.pool);
  registerProjectionMetrics(metricsRegistry, projectors, { lagInEvents: () => listCheckpointsWithLag(db, lagEventsCap) });
}

/** What a command API needs to serve: the database, its schema, and the event store. */
function writeProbes(storage: Storage): ReadinessProbe[] {
  return [postgresProbe(storage.pool), migrationsProbe(storage.pool), eventStoreProbe(storage.eventStore)];
}

/** The read models: none failed, none further than `maxLagMs` behind. */
function readModelsProbe(storage: Storage, maxLagMs: number): ReadinessProbe {
  return projectionsProbe(createKysely<unknown>(storage.pool), readModelNames, maxLagMs, () => systemClock.now());
}

const sides = new WeakMap<Storage, CommandSide>();

/**
 * The process's one command side: the command API, the payment gateway and the process managers
 * share its handlers, so a stream's state is cached once, not once per caller.
 */
function commandSide(config: Config, storage: Storage, logger: Logger): CommandSide {
  const existing = sides.get(storage);
  if (existing) return existing;
  const handlers = createCommandHandlers({
    eventStore: storage.eventStore,
    clock: systemClock,
    cacheSize: config.COMMAND_CACHE_STREAMS,
    observe: observeCommand,
    personalData: storage.vault,
  });
  const log = logger.child({ component: 'command-side' });
  const side: CommandSide = {
    handlers,
    clock: systemClock,
    policy: { holdMinutes: config.BOOKING_HOLD_MINUTES },
    onError: (err, what) => log.error({ err }, `could not ${what}; given up`),
    // Built on first use: the gateway records what it delivers through this very side.
    paymentGateway: () => paymentGateway(config, storage, logger),
    providerEventStore: storage.revealed,
  };
  sides.set(storage, side);
  return side;
}

function identityService(storage: Storage, handlers: CommandHandlers): IdentityService {
  const db = createKysely<IdentityTables>(storage.pool);
  return createIdentityService({
    users: handlers.user,
    credentials: new PgCredentialStore(db),
    refreshTokens: new PgRefreshTokenStore(db),
    securityEvents: new PgSecurityEventLog(db),
    passwords: new Argon2PasswordHasher(),
    clock: systemClock,
  });
}

let gateway: PaymentGateway | undefined;
/**
 * One per process: the command API and the payment process share it. The simulated one keeps its
 * intents in PostgreSQL, so any process may retry, cancel or pay what another started; its poller
 * stops when the pool ends.
 */
function paymentGateway(config: Config, storage: Storage, logger: Logger): PaymentGateway {
  return (gateway ??= createPaymentGateway(config, logger, { side: commandSide(config, storage, logger), eventStore: storage.revealed }, storage.pool));
}

/** A port taken, say: the app is closed, since its hooks and timers would keep the process alive. */
async function listenOrClose(app: { listen(options: { port: number; host: string }): Promise<string>; close(): Promise<unknown> }, port: number, host: string): Promise<void> {
  try {
    await app.listen({ port, host });
  } catch (error) {
    await app.close();
    throw error;
  }
}

async function startCommandApi(config: Config, storage: Storage, side: CommandSide, erased: ErasedSubjects, logger: Logger) {
  const app = await buildCommandApi({
    logger,
    clock: systemClock,
    secret: await loadSigningSecret(config),
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    corsOrigins: config.CORS_ORIGINS,
    rateLimitMax: config.RATE_LIMIT_MAX,
    authRateLimitMax: config.AUTH_RATE_LIMIT_MAX,
    trustProxy: config.TRUST_PROXY,
    idempotencyTtlHours: config.IDEMPOTENCY_TTL_HOURS,
    db: createKysely<IdempotencyTables>(storage.pool),
    identity: identityService(storage, side.handlers),
    side,
    payments: {
      gateway: paymentGateway(config, storage, logger),
      eventStore: storage.revealed,
      webhookSecret: config.STRIPE_WEBHOOK_SECRET,
      observeWebhook: webhookMetrics(metricsRegistry),
    },
    probes: writeProbes(storage),
    metricsRegistry,
    loadShedding: loadShedding(config),
    projections: { db: createKysely<unknown>(storage.pool), names: readModelNames },
    erasure: { side, vault: storage.vault, outsideTheLog: new PgRecordsOutsideTheLog(storage.pool), keyDestroyed: (userId) => erased.add(userId) },
    isErased: erased.has,
  });
  await listenOrClose(app, config.COMMAND_PORT, config.HOST);
  const url = `http://${config.HOST}:${config.COMMAND_PORT}`;
  logger.info({ url, docs: `${url}/docs` }, `command API listening on ${url} (OpenAPI at ${url}/docs)`);
  return app;
}

/** What a sweeping process manager could not do: a warning while it will retry, an error once it gives up; counted either way. */
function reportTo(log: Logger, observer: ProcessManagerObserver) {
  return (err: unknown, what: string, retried: boolean) => {
    if (retried) log.warn({ err }, `could not ${what}; will retry`);
    else log.error({ err }, `could not ${what}; given up`);
    observer.error(retried);
  };
}

/**
 * Process managers finish what requests cannot: lapsed holds, slots left by a crashed request,
 * refunds whose outcome never came. Every command they send is idempotent, so running them in
 * several processes is safe.
 */
function startProcessManagers(config: Config, storage: Storage, logger: Logger): () => Promise<void> {
  const side = commandSide(config, storage, logger);
  // Before any loop runs: it refuses a production start without Stripe, and a loop already
  // running, with no closer registered to stop it, would keep the process alive past the error.
  const gateway = paymentGateway(config, storage, logger);
  const observe = processManagerMetrics(metricsRegistry);
  const log = logger.child({ component: 'hold-expiry' });
  const expiryObserver = observe('hold-expiry');
  const expiry = new HoldExpiryProcess({
    eventStore: storage.revealed,
    side,
    orphanSlotGraceMs: config.ORPHAN_SLOT_GRACE_MS,
    onError: reportTo(log, expiryObserver),
    onAttempt: (succeeded) => expiryObserver.attempt(succeeded),
  });
  const refundLog = logger.child({ component: 'refund-reconciliation' });
  const refundObserver = observe('refund-reconciliation');
  const refunds = new RefundReconciliation({
    eventStore: storage.revealed,
    side,
    gateway,
    graceMs: config.REFUND_RECONCILE_AFTER_MS,
    onError: reportTo(refundLog, refundObserver),
    onAttempt: (succeeded) => refundObserver.attempt(succeeded),
  });
  new Gauge({
    name: 'refund_reconciliation_pending',
    help: 'Refunds whose outcome has not come yet, as this process\'s refund reconciliation follows them',
    registers: [metricsRegistry],
    collect() {
      this.set(refunds.pending);
    },
  });
  const { revealed: eventStore, pool } = storage;
  const stopPayments = startPaymentProcess({ eventStore, side, gateway, pool, logger, observer: observe('payment') });
  const stop = new AbortController();
  const running = [
    expiry.run(stop.signal, config.HOLD_SWEEP_INTERVAL_MS).catch((err: unknown) => log.error({ err }, 'hold expiry stopped')),
    refunds.run(stop.signal, config.HOLD_SWEEP_INTERVAL_MS).catch((err: unknown) => refundLog.error({ err }, 'refund reconciliation stopped')),
  ];
  return async () => {
    stop.abort();
    await Promise.all(running);
    await stopPayments();
  };
}

async function startQueryApi(config: Config, storage: Storage, erased: ErasedSubjects, logger: Logger): Promise<Server> {
  // Before the LISTEN connection opens: a missing secret then leaves nothing open.
  const secret = await loadSigningSecret(config);
  const notifications = new PgCheckpointListener({
    connectionString: storage.url,
    onError: (err) => logger.warn({ err }, 'checkpoint listener lost its connection; reconnecting'),
  });
  await notifications.start();
  try {
    const app = await buildQueryApi({
      logger,
      clock: systemClock,
      secret,
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      corsOrigins: config.CORS_ORIGINS,
      rateLimitMax: config.RATE_LIMIT_MAX,
      trustProxy: config.TRUST_PROXY,
      pool: storage.pool,
      events: storage.eventStore,
      personalData: storage.vault,
      notifications,
      consistencyTimeoutMs: config.QUERY_CONSISTENCY_TIMEOUT_MS,
      queryCache: { maxBytes: config.QUERY_CACHE_MB * 1024 * 1024, maxAgeMs: config.QUERY_CACHE_MAX_AGE_MS },
      probes: [...writeProbes(storage), readModelsProbe(storage, config.READY_MAX_PROJECTION_LAG_MS)],
      metricsRegistry,
      loadShedding: loadShedding(config),
      isErased: erased.has,
    });
    await listenOrClose(app, config.QUERY_PORT, config.HOST);
    const url = `http://${config.HOST}:${config.QUERY_PORT}`;
    logger.info({ url, docs: `${url}/docs` }, `query API listening on ${url} (OpenAPI at ${url}/docs)`);
    return {
      drain: (timeoutMs: number) => app.drain(timeoutMs),
      async close() {
        await app.close();
        await notifications.close();
      },
    };
  } catch (error) {
    // Its LISTEN connection would keep the process alive with nothing to serve.
    await notifications.close();
    throw error;
  }
}

/** The projector role's health and metrics: no API of its own to serve them. */
async function startOperationsServer(config: Config, storage: Storage, logger: Logger): Promise<Server> {
  // Not ready while a read model has failed; lag is the query API's concern (this one is catching up).
  const probes = [...writeProbes(storage), readModelsProbe(storage, Number.POSITIVE_INFINITY)];
  const app = await createOperationsServer({ logger, probes, metricsRegistry });
  await listenOrClose(app, config.PROJECTOR_PORT, config.HOST);
  logger.info({ url: `http://${config.HOST}:${config.PROJECTOR_PORT}` }, 'projector health and metrics listening');
  return { drain: (timeoutMs) => app.drain(timeoutMs), close: () => app.close() };
}

/** An API of this process, as its shutdown sees it. */
type Server = { drain(timeoutMs: number): Promise<void>; close(): Promise<void> };

/** `npm start [-- --role all|command|query|projector]`: the roles asked for, in this process. */
async function start(config: Config, role: Config['ROLE'], logger: Logger): Promise<void> {
  const resumesCheckpoints = role === 'all' || role === 'projector';
  const storage = await openStorage(config, logger, `bookable ${role}`, { claimEventLog: resumesCheckpoints ? 'claim' : 'check' });
  // EventStoreDB has no such transactions to report.
  if (storage.eventStore instanceof PgEventStore) registerEventStoreMetrics(metricsRegistry, storage.eventStore);
  // The APIs stop first, all at once: each turns new requests away (503) and lets those in
  // flight finish, within one grace period for all; then the rest closes in reverse order of
  // opening (process managers and projectors, then storage).
  const servers: Server[] = [];
  const closers: (() => Promise<void>)[] = [() => storage.stop()];
  let stopped: Promise<void> | undefined;
  // Once only, whoever asks first (a signal, an error, a failed start).
  const stopAll = () =>
    (stopped ??= (async () => {
      await Promise.all(servers.map((server) => server.drain(config.SHUTDOWN_GRACE_MS)));
      await Promise.all(servers.map((server) => server.close()));
      for (const close of [...closers].reverse()) await close();
    })());
  // Past the grace period a second chance is not given: the process exits (1). Not on
  // `beforeExit`: close-with-grace would then exit 0 over the failure a failed start recorded.
  closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS + 5_000, logger, skip: ['beforeExit'] }, async ({ err, signal }) => {
    if (err) logger.error({ err }, 'stopping after an unexpected error');
    else logger.info({ signal }, 'stopping');
    await stopAll();
    // A failure recorded before the signal (the projector thread's) still ends in exit 1.
    if (process.exitCode !== undefined && process.exitCode !== 0) throw new Error('stopped after a failure');
  });

  try {
    // One per process: who was erased lately, whose access tokens both APIs refuse; and each
    // erasure another process made, passed on to this one's vault (and the projector thread's),
    // which otherwise kept revealing (and sealing with) a destroyed key it still held in memory.
    // Every role has a vault.
    let projectorThread: { markErased(subjectId: string): void } | undefined;
    const erased = await ErasedSubjects.start({
      pool: storage.pool,
      tokenLifetimeMs: accessTokenTtlSeconds * 1000,
      vault: {
        markErased: (subjectId) => {
          storage.vault.markErased(subjectId);
          projectorThread?.markErased(subjectId);
        },
      },
      onError: (err) => logger.warn({ err }, 'could not read the erased subjects; will retry'),
    });
    closers.push(() => erased.close());
    if (role === 'all' || role === 'command') servers.push(await startCommandApi(config, storage, commandSide(config, storage, logger), erased, logger));
    if (role === 'projector') {
      const projectors = startReadModelProjectors(config, storage, logger);
      publishProjectionMetrics(storage, projectors);
      // Batches in flight commit before the pool closes (closers run last pushed, first).
      closers.push(() => projectors.stop());
      servers.push(await startOperationsServer(config, storage, logger));
    }
    if (role === 'all') {
      const projectors = await startProjectorThread(storage, logger, (err) => {
        logger.error({ err }, 'the projector thread failed; stopping');
        process.exitCode = 1;
        void stopAll();
      });
      projectorThread = projectors;
      publishProjectionMetrics(storage, projectors);
      closers.push(() => projectors.stop());
    }
    // In every projector process, all of them active: every command they send is idempotent
    // (tests/application/process-managers-concurrent.pg.test.ts).
    if (role === 'all' || role === 'projector') closers.push(startProcessManagers(config, storage, logger));
    if (role === 'all' || role === 'query') servers.push(await startQueryApi(config, storage, erased, logger));
  } catch (error) {
    // Without this, a failed start would leave the embedded PostgreSQL running and the process with it.
    await stopAll();
    throw error;
  }
  logger.info({ role }, 'started');
}

/**
 * `npm run seed`: the first admin and auditor, then (see `demoSkipped`) demo accounts with
 * listings and schedules.
 */
async function seed(config: Config, logger: Logger, demo: boolean | undefined): Promise<void> {
  const storage = await openStorage(config, logger, undefined, { share: true });
  try {
    const options = {
      adminEmail: config.ADMIN_EMAIL ?? 'admin@bookable.local',
      adminPassword: config.ADMIN_PASSWORD,
      auditorEmail: config.AUDITOR_EMAIL ?? 'auditor@bookable.local',
    };
    const side = commandSide(config, storage, logger);
    const identity = identityService(storage, side.handlers);
    const print = (line: string) => process.stdout.write(`${line}\n`);
    await seedUsers(identity, options, print);
    const skipped = demoSkipped(demo, config.NODE_ENV);
    if (skipped) print(skipped);
    else await seedDemo({ side, identity, credentials: new PgCredentialStore(createKysely<IdentityTables>(storage.pool)) }, print);
  } finally {
    await storage.stop();
  }
}

/** `npm run migrate`: applies pending schema migrations and says which. */
async function migrate(config: Config, logger: Logger): Promise<void> {
  const database = await openDatabase(config, logger, { share: true });
  const pool = createPool(database.url, 2);
  try {
    const { results, newer } = await migrateToLatest(pool);
    for (const result of results) process.stdout.write(`${result.status}: ${result.migrationName}\n`);
    if (newer.length > 0) process.stdout.write(`schema is newer than this code (${newer.join(', ')}); nothing to apply\n`);
    else if (results.length === 0) process.stdout.write('schema is up to date\n');
  } finally {
    await pool.end();
    await database.stop();
  }
}

/**
 * `npm run projections:rebuild -- <name>`: builds a fresh copy of a read model in this process
 * (or lets a running projector do it) and reports the rate once it is live.
 */
async function rebuild(config: Config, logger: Logger, projection: Projection): Promise<void> {
  // It builds the read model itself when no projector does: it writes checkpoints as one does.
  const storage = await openStorage(config, logger, undefined, { share: true, claimEventLog: 'claim' });
  try {
    await rebuildReadModel({
      db: createKysely<unknown>(storage.pool),
      eventStore: storage.eventStore,
      projection,
      startProjectors: () => startProjectors({ config, connectionString: storage.url, pool: storage.pool, eventStore: storage.revealed, logger, projections: [projection] }),
      print: (line) => process.stdout.write(`${line}\n`),
    });
  } finally {
    await storage.stop();
  }
}

async function main(): Promise<void> {
  const line = parseMainCommandLine(readModelProjections);
  if (!line) return;
  const role = line.command === 'start' ? line.role : undefined;
  // Checked for the role this process runs, `--role` before ROLE: which ports it listens on.
  const config = loadConfig(role === undefined ? process.env : { ...process.env, ROLE: role }, { listens: line.command === 'start' });
  const logger = createLogger({ level: config.LOG_LEVEL });
  switch (line.command) {
    case 'seed':
      return seed(config, logger, line.demo);
    case 'migrate':
      return migrate(config, logger);
    case 'rebuild':
      return rebuild(config, logger, line.projection);
    case 'start':
      return start(config, config.ROLE, logger);
    default: {
      const _exhaustive: never = line;
      return _exhaustive;
    }
  }
}

main().catch((error: unknown) => {
  const { code, text } = failureReport(error, { failedCode: 1, databaseUrl: process.env.DATABASE_URL });
  process.stderr.write(`${text}\n`);
  process.exitCode = code;
});
