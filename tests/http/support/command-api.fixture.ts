import { createHmac } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type pg from 'pg';
import { createCommandHandlers, type CommandSide } from '../../../src/application/command-handlers.js';
import { createIdentityService, type IdentityService } from '../../../src/application/identity/identity.service.js';
import type { Clock } from '../../../src/application/ports/clock.js';
import type { EventStore } from '../../../src/application/ports/event-store.js';
import type { PersonalDataVault } from '../../../src/application/privacy/personal-data-vault.js';
import { buildCommandApi, type CommandApiDeps } from '../../../src/infrastructure/http/command-api.js';
import type { HttpServer } from '../../../src/infrastructure/http/http-server.js';
import { postgresProbe } from '../../../src/infrastructure/http/plugins/health.plugin.js';
import type { IdempotencyTables } from '../../../src/infrastructure/idempotency/idempotency.tables.js';
import { Argon2PasswordHasher } from '../../../src/infrastructure/identity/argon2-password-hasher.js';
import type { IdentityTables } from '../../../src/infrastructure/identity/identity.tables.js';
import { PgCredentialStore } from '../../../src/infrastructure/identity/pg-credential-store.js';
import { PgRefreshTokenStore } from '../../../src/infrastructure/identity/pg-refresh-token-store.js';
import { PgSecurityEventLog } from '../../../src/infrastructure/identity/pg-security-event-log.js';
import { PgEventStore } from '../../../src/infrastructure/pg-event-store/pg-event-store.js';
import { createKysely, createPool, migrateToLatest } from '../../../src/infrastructure/postgres/database.js';
import { readModelProjections } from '../../../src/projections/read-models.js';
import type { ErasedSubjects } from '../../../src/infrastructure/privacy/erased-subjects.js';
import { PgRecordsOutsideTheLog } from '../../../src/infrastructure/privacy/pg-records-outside-the-log.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { capturedLogs } from '../../support/captured-logs.js';
import { pgVault } from '../../support/personal-data.js';

export const secret = 'test-secret-that-is-long-enough-for-hs256-0123456789';
export const issuer = 'bookable-test';
export const audience = 'bookable-test-api';

/** A clock that only moves when told to; from now, or from `start`. */
export class FakeClock implements Clock {
  private current: Date;
  constructor(start: Date = new Date()) {
    this.current = new Date(start);
  }
  now(): Date {
    return new Date(this.current);
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
}

/** One database per test file, migrated; every API the file starts shares it. */
export type TestBackend = {
  readonly database: TestDatabase;
  readonly pool: pg.Pool;
  readonly eventStore: EventStore;
  readonly identityDb: Kysely<IdentityTables>;
  readonly idempotencyDb: Kysely<IdempotencyTables>;
  close(): Promise<void>;
};

export async function startBackend(): Promise<TestBackend> {
  const database = await createTestDatabase();
  const pool = createPool(database.url, 8);
  await migrateToLatest(pool);
  const eventStore = new PgEventStore(pool);
  return {
    database,
    pool,
    eventStore,
    identityDb: createKysely<IdentityTables>(pool),
    idempotencyDb: createKysely<IdempotencyTables>(pool),
    async close() {
      await eventStore.close();
      await pool.end();
      await database.drop();
    },
  };
}

export type TestApi = {
  readonly app: HttpServer;
  /** `http://127.0.0.1:<port>` once listening. */
  readonly url: string;
  readonly clock: FakeClock;
  /** The command handlers behind the routes, for arranging state without HTTP. */
  readonly side: CommandSide;
  readonly identity: IdentityService;
  /** Seals and reveals personal data with keys in the test database. */
  readonly vault: PersonalDataVault;
  /** Every log line the app wrote, parsed. */
  readonly logs: Record<string, unknown>[];
  close(): Promise<void>;
};

/**
 * The real command API over real HTTP on a free port. `routes` adds test-only routes before the
 * app is sealed (a route that throws, one that needs a role).
 */
export async function startApi(
  backend: TestBackend,
  options: Partial<Pick<CommandApiDeps, 'rateLimitMax' | 'authRateLimitMax' | 'probes' | 'payments' | 'corsOrigins' | 'idempotencyLeaseMs' | 'trustProxy'>> & {
    routes?: (app: HttpServer) => void;
    clock?: FakeClock;
    /** This process's watcher of erasures: its tokens refused, its own erasures added at once. */
    erasedSubjects?: ErasedSubjects;
  } = {},
): Promise<TestApi> {
  const clock = options.clock ?? new FakeClock();
  const { logger, lines: logs } = capturedLogs();
  const vault = pgVault(backend.pool);
  const handlers = createCommandHandlers({ eventStore: backend.eventStore, clock, personalData: vault });
  const side: CommandSide = { handlers, clock, policy: { holdMinutes: 15 } };
  const identity = createIdentityService({
    users: handlers.user,
    credentials: new PgCredentialStore(backend.identityDb),
    refreshTokens: new PgRefreshTokenStore(backend.identityDb),
    securityEvents: new PgSecurityEventLog(backend.identityDb),
    passwords: new Argon2PasswordHasher(),
    clock,
  });
  const app = await buildCommandApi({
    logger,
    clock,
    secret,
    issuer,
    audience,
    corsOrigins: options.corsOrigins ?? ['https://app.example'],
    rateLimitMax: options.rateLimitMax ?? 10_000,
    authRateLimitMax: options.authRateLimitMax ?? 10_000,
    ...(options.trustProxy === undefined ? {} : { trustProxy: options.trustProxy }),
    idempotencyTtlHours: 24,
    ...(options.idempotencyLeaseMs === undefined ? {} : { idempotencyLeaseMs: options.idempotencyLeaseMs }),
    db: backend.idempotencyDb,
    identity,
    side,
    ...(options.payments ? { payments: options.payments } : {}),
    projections: { db: createKysely<unknown>(backend.pool), names: readModelProjections.map((projection) => projection.name) },
    erasure: {
      side,
      vault,
      outsideTheLog: new PgRecordsOutsideTheLog(backend.pool),
      ...(options.erasedSubjects ? { keyDestroyed: options.erasedSubjects.add.bind(options.erasedSubjects) } : {}),
    },
    ...(options.erasedSubjects ? { isErased: options.erasedSubjects.has } : {}),
    probes: options.probes ?? [postgresProbe(backend.pool)],
  });
  options.routes?.(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const url = typeof address === 'object' && address ? `http://127.0.0.1:${address.port}` : '';
  return { app, url, clock, side, identity, vault, logs, close: () => app.close() };
}

/** A JWT signed by hand, so tests can make every kind of bad token the API must refuse. */
export function handMadeJwt(payload: Record<string, unknown>, options: { header?: Record<string, unknown>; key?: string } = {}): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signingInput = `${encode(options.header ?? { alg: 'HS256', typ: 'JWT' })}.${encode(payload)}`;
  const signature = createHmac('sha256', options.key ?? secret).update(signingInput).digest('base64url');
  return `${signingInput}.${signature}`;
}

export function validClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { sub: 'user-1', roles: ['CONSUMER'], iss: issuer, aud: audience, iat: now, exp: now + 600, ...overrides };
}

/**
 * What a crash after a command's append and before its answer was kept leaves of its
 * Idempotency-Key: claimed, the lease run out (by the database's clock, which leases go by), so
 * a retry runs the command again.
 */
export async function answerLost(backend: TestBackend, key: string): Promise<void> {
  await backend.idempotencyDb
    .updateTable('idempotency_keys')
    .set({ status: 'in_flight', locked_until: sql<Date>`now() - interval '1 second'`, response_status: null, response_headers: null, response_body: null })
    .where('key', '=', key)
    .execute();
}

/** An Idempotency-Key past its time to live (by the database's clock, which expiry goes by). */
export async function keyExpired(backend: TestBackend, key: string): Promise<void> {
  await backend.idempotencyDb.updateTable('idempotency_keys').set({ expires_at: sql<Date>`now() - interval '1 second'` }).where('key', '=', key).execute();
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: Record<string, unknown>; text: string }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? {} : JSON.parse(text), text };
}
