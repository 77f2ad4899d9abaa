import { isIP } from 'node:net';
import { z } from 'zod';
import { defaultCachedStreams } from '../../application/command-handling/state-cache.js';
import { wholeNumberText } from '../whole-number-text.js';
import { trustedProxiesText } from './trusted-proxies.js';

/**
 * Every setting the service reads from the environment, in one schema. The README's
 * configuration table is checked against `settingDescriptions` by a test, so a new setting
 * cannot go undocumented.
 */
const port = wholeNumberText(0, 65535);
const optionalUrl = z.string().url().optional();
const flag = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1');

/** Dot-separated labels (underscores too: container names); no port, scheme or brackets, which `listen` would try to resolve. */
const hostName = /^[\w-]+(\.[\w-]+)*\.?$/;

/** Base64 of exactly 32 bytes: one AES-256 key. */
export function isAes256KeyText(text: string): boolean {
  return /^[A-Za-z0-9+/]{43}=$/.test(text) && Buffer.from(text, 'base64').length === 32;
}

/** The keys of a comma-separated list (`MASTER_KEY_PREVIOUS`), blanks around and empty entries left out. */
export function masterKeyTexts(list: string | undefined): string[] {
  return (list ?? '').split(',').map((key) => key.trim()).filter((key) => key.length > 0);
}

export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/, error: 'must be a postgres:// or postgresql:// connection string' }).optional(),
  EVENTSTORE_URL: z
    .string()
    .regex(/^esdb(\+discover)?:\/\//, 'must be an esdb:// or esdb+discover:// connection string')
    .optional(),
  DATA_DIR: z.string().min(1).default('./.data'),
  EMBEDDED_POSTGRES_PORT: port.optional(),
  COMMAND_PORT: port.default(3001),
  QUERY_PORT: port.default(3002),
  PROJECTOR_PORT: port.default(3003),
  HOST: z
    .string()
    .refine((host) => isIP(host) !== 0 || hostName.test(host), 'must be an IP address or a host name, without a port or scheme (the ports are COMMAND_PORT, QUERY_PORT and PROJECTOR_PORT)')
    .default('127.0.0.1'),
  ROLE: z.enum(['all', 'command', 'query', 'projector']).default('all'),
  DATABASE_POOL_SIZE: wholeNumberText(1, 200).default(10),
  RUN_MIGRATIONS: flag.default(true),
  JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  MASTER_KEY: z
    .string()
    .refine(isAes256KeyText, 'must be base64 of 32 random bytes (e.g. `openssl rand -base64 32`)')
    .optional(),
  MASTER_KEY_PREVIOUS: z
    .string()
    .refine((text) => masterKeyTexts(text).every(isAes256KeyText), 'must be comma-separated master keys, each base64 of 32 bytes')
    .optional(),
  JWT_ISSUER: z.string().min(1).default('bookable'),
  JWT_AUDIENCE: z.string().min(1).default('bookable-api'),
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((origin) => origin.trim()).filter((origin) => origin.length > 0)),
  RATE_LIMIT_MAX: wholeNumberText(1).default(600),
  AUTH_RATE_LIMIT_MAX: wholeNumberText(1).default(30),
  TRUST_PROXY: trustedProxiesText,
  IDEMPOTENCY_TTL_HOURS: wholeNumberText(24, 24 * 30).default(24),
  ADMIN_EMAIL: z.email().optional(),
  ADMIN_PASSWORD: z.string().min(12).optional(),
  AUDITOR_EMAIL: z.email().optional(),
  PROJECTION_BATCH_SIZE: wholeNumberText(1, 10_000).default(500),
  PROJECTION_BATCH_MAX_WAIT_MS: wholeNumberText(0, 10_000).default(10),
  PROJECTION_MAX_ATTEMPTS: wholeNumberText(1, 100).default(5),
  PROJECTION_RETRY_DELAY_MS: wholeNumberText(1, 60_000).default(200),
  PROJECTION_LOCK_RETRY_MS: wholeNumberText(50, 60_000).default(1000),
  BOOKING_HOLD_MINUTES: wholeNumberText(1, 24 * 60).default(15),
  HOLD_SWEEP_INTERVAL_MS: wholeNumberText(100, 3_600_000).default(5_000),
  ORPHAN_SLOT_GRACE_MS: wholeNumberText(1_000, 86_400_000).default(120_000),
  REFUND_RECONCILE_AFTER_MS: wholeNumberText(1_000, 7 * 86_400_000).default(900_000),
  COMMAND_CACHE_STREAMS: wholeNumberText(0, 1_000_000).default(defaultCachedStreams),
  SHUTDOWN_GRACE_MS: wholeNumberText(0, 600_000).default(10_000),
  SHED_EVENT_LOOP_DELAY_MS: wholeNumberText(0, 60_000).default(1000),
  SHED_HEAP_USED_MB: wholeNumberText(0, 1_000_000).optional(),
  READY_MAX_PROJECTION_LAG_MS: wholeNumberText(0, 3_600_000).default(30_000),
  QUERY_CONSISTENCY_TIMEOUT_MS: wholeNumberText(0, 60_000).default(5000),
  QUERY_CACHE_MB: wholeNumberText(0, 4096).default(32),
  QUERY_CACHE_MAX_AGE_MS: wholeNumberText(0, 3_600_000).default(5000),
  STRIPE_SECRET_KEY: z.string().regex(/^(sk|rk)_(test|live)_\w+$/, 'must be a Stripe secret or restricted key (sk_… or rk_…)').optional(),
  STRIPE_WEBHOOK_SECRET: z.string().regex(/^whsec_\w+$/, 'must be a Stripe webhook signing secret (whsec_…)').optional(),
  STRIPE_API_BASE: optionalUrl,
});

export type Config = z.infer<typeof configSchema>;

type PortName = 'COMMAND_PORT' | 'QUERY_PORT' | 'PROJECTOR_PORT' | 'EMBEDDED_POSTGRES_PORT';

/**
 * The ports a process of its role listens on (see `start` in main.ts), the embedded PostgreSQL it
 * starts included; 0 is any free port, so it never clashes.
 */
function portsOf(config: Config): { name: PortName; port: number }[] {
  const role = config.ROLE;
  const names: PortName[] = [];
  if (role === 'all' || role === 'command') names.push('COMMAND_PORT');
  if (role === 'all' || role === 'query') names.push('QUERY_PORT');
  if (role === 'projector') names.push('PROJECTOR_PORT');
  if (config.DATABASE_URL === undefined) names.push('EMBEDDED_POSTGRES_PORT');
  return names.flatMap((name) => {
    const port = config[name];
    return port === undefined || port === 0 ? [] : [{ name, port }];
  });
}

/** A port this process would listen on twice: caught here, not as `EADDRINUSE` half-way through start-up. */
function portClashes(config: Config): string[] {
  const seen = new Map<number, PortName>();
  return portsOf(config).flatMap(({ name, port }) => {
    const other = seen.get(port);
    seen.set(port, other ?? name);
    return other === undefined ? [] : [`${name}: ${port} is ${other} too: the \`${config.ROLE}\` role listens on both in one process`];
  });
}

export const settingDescriptions: Record<keyof Config, string> = {
  NODE_ENV: '`production` hides error details and requires explicit secrets',
  LOG_LEVEL: 'pino log level',
  DATABASE_URL: 'PostgreSQL for events and read models (`postgres://…` or `postgresql://…`); unset: embedded PostgreSQL under `DATA_DIR`',
  EVENTSTORE_URL: 'EventStoreDB connection string (`esdb://…`); unset: events go to PostgreSQL',
  DATA_DIR: 'where the embedded PostgreSQL and generated secrets live',
  EMBEDDED_POSTGRES_PORT: 'port of the embedded PostgreSQL; unset or 0: a free port',
  COMMAND_PORT: 'port of the command API',
  QUERY_PORT: 'port of the query API',
  PROJECTOR_PORT: 'port of the projector role\'s `/health/live`, `/health/ready` and `/metrics` (the `all` role serves them on both APIs)',
  HOST: 'address both APIs listen on: an IP address or a host name, without a port',
  ROLE: '`all`, `command`, `query` or `projector` (also `--role`)',
  DATABASE_POOL_SIZE: 'connections per PostgreSQL pool',
  RUN_MIGRATIONS: 'apply schema migrations at start-up',
  JWT_SECRET: 'HS256 key for access tokens (at least 32 characters); required in production, else generated once into `DATA_DIR/jwt-secret`',
  MASTER_KEY:
    'base64 of 32 bytes that wraps every person\'s data key (crypto-shredding); keep it apart from the database; required in production, else generated once into `DATA_DIR/master-key`',
  MASTER_KEY_PREVIOUS:
    'comma-separated master keys (base64 of 32 bytes each) that wrapped data keys before `MASTER_KEY`: they only unwrap the data keys they wrapped, never a new one; for a database holding data keys of several master keys, and the first step of a key rotation (see "Personal data and erasure")',
  JWT_ISSUER: '`iss` of issued access tokens, checked on every request',
  JWT_AUDIENCE: '`aud` of issued access tokens, checked on every request',
  CORS_ORIGINS: 'comma-separated origins allowed by CORS; empty: no cross-origin access',
  RATE_LIMIT_MAX: 'requests per minute per client IP on each API',
  AUTH_RATE_LIMIT_MAX: 'requests per minute per client IP on `/v1/auth/*`',
  TRUST_PROXY:
    'which proxies may name the client IP in `X-Forwarded-For` (for rate limits, the security log and event metadata): `false`, none (the connection\'s address is the client\'s); or a comma-separated list of their addresses, CIDR blocks or `loopback`/`linklocal`/`uniquelocal` (the client is the nearest address not on it, the connection\'s first). `true` and hop counts are refused: a client could then choose its own IP',
  IDEMPOTENCY_TTL_HOURS: 'how long an `Idempotency-Key` and its stored response are kept (at least 24)',
  ADMIN_EMAIL: '`npm run seed`: email of the admin to create (default `admin@bookable.local`)',
  ADMIN_PASSWORD: '`npm run seed`: password of that admin; unset: a generated one is printed',
  AUDITOR_EMAIL: '`npm run seed`: email of the auditor to create (default `auditor@bookable.local`); its password is generated and printed',
  PROJECTION_BATCH_SIZE: 'most events a projector commits in one transaction',
  PROJECTION_BATCH_MAX_WAIT_MS: 'longest a live event waits for others to share its projector transaction',
  PROJECTION_MAX_ATTEMPTS: 'tries of an event that its projection handler throws on, or that cannot be read (revealed), before the projection stops as `failed`; passing database errors (deadlock, serialization failure, too many connections, an admin shutdown, a lost connection) are retried as long as they last and not counted',
  PROJECTION_RETRY_DELAY_MS: 'first delay between those tries; it doubles each time, up to 10 s',
  PROJECTION_LOCK_RETRY_MS: 'how often a standby projector tries to take over a projection, and checks for rebuilds',
  BOOKING_HOLD_MINUTES: 'how long requested dates stay held for payment before the booking expires',
  HOLD_SWEEP_INTERVAL_MS: 'how often the expiry process looks for lapsed holds, orphaned slots and unfinished cancellations, and the refund reconciliation for refunds due a look at the provider',
  ORPHAN_SLOT_GRACE_MS: 'how long a step may be missing after the one before it (a crashed request) before the expiry process finishes it: a doctor slot held without its appointment is freed, the dates, slot and time a cancellation held are given back, a listing\'s calendar follows the listing',
  REFUND_RECONCILE_AFTER_MS:
    'how long after a refund is requested, its outcome still not recorded (a `pending` answer whose webhook never came, or a create still being retried), the provider is asked how it stands and its outcome recorded; still pending, or not made yet, it is asked again after twice the last wait, at most 6 h',
  COMMAND_CACHE_STREAMS: 'streams per aggregate whose folded state each command process keeps in memory (about 2 KB each, across nine aggregates)',
  SHED_EVENT_LOOP_DELAY_MS: 'event-loop delay past which the APIs answer new requests 503 with `Retry-After` (0: never)',
  SHED_HEAP_USED_MB: 'heap in use past which the APIs answer new requests 503 with `Retry-After` (0: never); unset: 90 % of the heap limit (`--max-old-space-size`)',
  READY_MAX_PROJECTION_LAG_MS: 'the query API reports not ready (503 on `/health/ready`) while a read model\'s oldest unprocessed event is older than this, or a read model has failed or not been built yet',
  SHUTDOWN_GRACE_MS: 'on SIGTERM/SIGINT, how long requests in flight may take to finish (new ones get 503, on every API of the process at once) before their connections are cut',
  QUERY_CONSISTENCY_TIMEOUT_MS: 'longest the query API waits for its read models to reach a `Consistency-Position` before answering 503 with `Retry-After`',
  QUERY_CACHE_MB: 'answers each query process keeps until a read model they were read from commits again (0: none; see "Query cache")',
  QUERY_CACHE_MAX_AGE_MS: 'longest a kept answer is served even if no commit was announced: the backstop for a listener connection lost unnoticed',
  STRIPE_SECRET_KEY: 'Stripe API key; unset: a simulated gateway whose payments succeed by themselves (refused in production)',
  STRIPE_WEBHOOK_SECRET: 'signing secret of the Stripe webhook endpoint (`POST /v1/webhooks/stripe`); required with a key in production',
  STRIPE_API_BASE: 'another address for the Stripe API (`http://host:port`), e.g. stripe-mock; unset: Stripe\'s',
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Parses the environment; a bad setting stops start-up with a message naming it. `listens: false`
 * for a process that serves nothing (`seed`, `migrate`, `rebuild`, the CLIs): the ports it would
 * not open cannot clash, and an env file shared with processes of other roles must not stop it.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, options: { readonly listens?: boolean } = {}): Config {
  const parsed = configSchema.safeParse(env);
  const problems = parsed.success
    ? options.listens === false ? [] : portClashes(parsed.data)
    : parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  if (parsed.success && problems.length === 0) return parsed.data;
  throw new ConfigError(`Invalid configuration:\n${problems.map((problem) => `  ${problem}`).join('\n')}`);
}
