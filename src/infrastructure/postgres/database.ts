import {
  Kysely,
  Migrator,
  PostgresDialect,
  type MigrationResult,
  type PostgresCursor,
  type PostgresPool,
  type PostgresPoolClient,
  type PostgresQueryResult,
} from 'kysely';
import pg from 'pg';
import { migrations } from './migrations.js';
import { assertTablesInPublic, pinnedSearchPath, pinSearchPath } from './search-path.js';

/**
 * Longest a transaction of ours may sit idle before the server ends its session. Every open
 * transaction holds back what event subscribers may read, so one left open by a process that
 * died without closing its connection (a host lost, the network cut: the server learns of it
 * only from TCP keepalive, two hours by default) would stall every projection and process
 * manager in every process, and hold its projection's checkpoint row locked. Ours are idle for
 * milliseconds between statements.
 */
export const idleTransactionTimeoutMs = 30_000;

/**
 * `applicationName` tells an operator in `pg_stat_activity` which process (and role) a connection
 * serves. TCP keepalive lets a connection whose server vanished (host lost, network cut) fail its
 * query in flight, rather than leave it waiting for an answer that never comes: probed after 10 s
 * of silence (the system's default is two hours), then at the system's interval.
 *
 * Each new connection has its `search_path` pinned (`pinSearchPath`) before the pool lends it
 * out, for `pool.query` as for kysely: one whose pin fails is discarded, and the caller gets the
 * error rather than a connection that resolves names by PostgreSQL's default.
 */
export function createPool(url: string, max = 10, applicationName = 'bookable'): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    application_name: applicationName,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    verify: (client, done) => {
      pinSearchPath(client).then(
        () => done(),
        (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
      );
    },
  });
  // A client losing its connection (server restart, terminated backend) must not crash the
  // process: idle ones are reported on the pool, checked-out ones only on the client, where
  // pg-pool removes its own listener while the client is lent out. The query in flight still
  // fails with the error, and the pool replaces the client.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

/** A kysely instance over an existing pool; `Database` is the read models' table interface. */
export function createKysely<Database>(pool: pg.Pool): Kysely<Database> {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: preparing(pool) }) });
}

/**
 * Past this many distinct statements on one connection, further ones run unnamed: SQL whose text
 * varies (an `IN` list per batch size) must not fill the server's memory with prepared plans.
 */
const maxPreparedPerConnection = 200;
const preparable = /^\s*(select|insert|update|delete|with)\b/i;
/** "cached plan must not change result type": a read model's table changed under a prepared statement. */
const planChangedResultType = '0A000';

/**
 * The statements each connection has prepared, whichever kysely instance (many share a pool)
 * runs on it: text → name, or `null` for "run it unnamed".
 */
const namesByClient = new WeakMap<pg.PoolClient, Map<string, string | null>>();

/**
 * Kysely sends every query unnamed, so PostgreSQL parses and plans it again each time: for a read
 * model's list query that was most of the server's work per request. Here each connection
 * prepares the statements it runs (named by their text), and later runs only bind and execute.
 * A statement whose result type a schema change altered runs unnamed from then on.
 */
function preparing(pool: pg.Pool): PostgresPool {
  return {
    async connect() {
      const client = await pool.connect();
      let names = namesByClient.get(client);
      if (!names) {
        // Our transactions are all kysely's (appends are single statements). Set once per
        // connection by a statement of its own: a startup `options` would override, or be
        // overridden by, one in the URL or PGOPTIONS, and poolers refuse it.
        try {
          await client.query(`set idle_in_transaction_session_timeout = ${idleTransactionTimeoutMs}`);
        } catch (error) {
          client.release(true);
          throw error;
        }
        namesByClient.set(client, (names = new Map()));
      }
      return new PreparingClient(client, names);
    },
    end: () => pool.end(),
  };
}

class PreparingClient implements PostgresPoolClient {
  constructor(
    private readonly client: pg.PoolClient,
    /** Statement text → its name on this connection, or `null`: run it unnamed. */
    private readonly names: Map<string, string | null>,
  ) {}

  query<R>(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<R>>;
  query<R>(cursor: PostgresCursor<R>): PostgresCursor<R>;
  query<R>(statement: string | PostgresCursor<R>, parameters: ReadonlyArray<unknown> = []): Promise<PostgresQueryResult<R>> | PostgresCursor<R> {
    if (typeof statement !== 'string') return this.client.query(statement as unknown as pg.Submittable) as unknown as PostgresCursor<R>;
    return this.run<R>(statement, [...parameters]);
  }

  release(): void {
    this.client.release();
  }

  private async run<R>(text: string, values: unknown[]): Promise<PostgresQueryResult<R>> {
    const name = this.nameOf(text);
    if (name === null) return toResult(await this.client.query({ text, values, rowMode: 'array' }));
    try {
      return toResult(await this.client.query({ name, text, values, rowMode: 'array' }));
    } catch (error) {
      if (!(error instanceof pg.DatabaseError && error.code === planChangedResultType)) throw error;
      this.names.set(text, null);
      return toResult(await this.client.query({ text, values, rowMode: 'array' }));
    }
  }

  private nameOf(text: string): string | null {
    const known = this.names.get(text);
    if (known !== undefined) return known;
    // Full: run unnamed, and remember nothing more (the map stays bounded too).
    if (this.names.size >= maxPreparedPerConnection) return null;
    const name = preparable.test(text) ? `kysely_${this.names.size}` : null;
    this.names.set(text, name);
    return name;
  }
}

/** Several statements in one text (a migration's, sent unnamed) give one result each: the last one counts. */
function toResult<R>(results: pg.QueryResult<unknown[]> | pg.QueryResult<unknown[]>[]): PostgresQueryResult<R> {
  const result = Array.isArray(results) ? results.at(-1) : results;
  if (!result) return { command: 'SELECT', rowCount: 0, rows: [] };
  const toObject = rowBuilder(result.fields);
  return { command: result.command as PostgresQueryResult<R>['command'], rowCount: result.rowCount ?? 0, rows: result.rows.map(toObject) as R[] };
}

/**
 * Rows come as arrays and become objects here, through one function per column list, whose
 * object literal has a fixed shape: pg's own rows are built by assigning each column by name, a
 * store site every query's shape passes through, which in a process running many queries turned
 * megamorphic and took a fifth of the query API's time.
 */
const rowBuilders = new Map<string, (values: unknown[]) => unknown>();
const maxRowBuilders = 1000;

function rowBuilder(fields: readonly pg.FieldDef[]): (values: unknown[]) => unknown {
  const names = fields.map((field) => field.name);
  const key = names.join('\u0000');
  let build = rowBuilders.get(key);
  if (!build) {
    // A later column of the same name wins, as it does in pg's objects.
    const members = names.map((name, index) => `${JSON.stringify(name)}: values[${index}]`).join(', ');
    build = new Function('values', `return { ${members} };`) as (values: unknown[]) => unknown;
    if (rowBuilders.size < maxRowBuilders) rowBuilders.set(key, build);
  }
  return build;
}

/** kysely's record of applied migrations (its default table name). */
const migrationTable = 'kysely_migration';
const undefinedTable = '42P01';

/**
 * Names of the migrations the database has applied, ours or not (none before the first).
 * A plain read of kysely's table: the migrator's own listing creates its tables first, which a
 * readiness probe (polled every few seconds, perhaps by a role without DDL rights) must not.
 */
async function appliedMigrations(pool: pg.Pool): Promise<Set<string>> {
  try {
    const { rows } = await pool.query<{ name: string }>(`SELECT name FROM ${migrationTable}`);
    return new Set(rows.map((row) => row.name));
  } catch (error) {
    if (!(error instanceof pg.DatabaseError && error.code === undefinedTable)) throw error;
    return new Set();
  }
}

/** Names of the migrations this code has that the database has not applied (none: up to date). */
export async function pendingMigrations(pool: pg.Pool): Promise<string[]> {
  return notIn(await appliedMigrations(pool));
}

function notIn(applied: Set<string>): string[] {
  return Object.keys(migrations)
    .sort()
    .filter((name) => !applied.has(name));
}

export type MigrationOutcome = {
  /** One per migration this call applied; none when the schema had all of this code's. */
  readonly results: readonly MigrationResult[];
  /** Migrations the database has and this code does not know: a newer release applied them. */
  readonly newer: readonly string[];
};

/**
 * Applies every pending migration; throws with the failing migration's name.
 *
 * The migrator is only asked when there is something to apply, because it refuses any schema
 * holding migrations it does not know: an older release, which may run beside a newer one
 * during an upgrade, would otherwise fail to start once the newer one had migrated.
 */
export async function migrateToLatest(pool: pg.Pool): Promise<MigrationOutcome> {
  await assertTablesInPublic(pool);
  const applied = await appliedMigrations(pool);
  const pending = notIn(applied);
  const newer = [...applied].filter((name) => !Object.hasOwn(migrations, name)).sort();
  if (pending.length === 0) return { results: [], newer };
  if (newer.length > 0) {
    // Code and schema have diverged: no release has both, so neither order of applying is known safe.
    throw new Error(
      `Cannot apply ${pending.join(', ')}: the database has migrations this code does not know (${newer.join(', ')}); ` +
        'run a release that has all of them',
    );
  }
  const db = createKysely<unknown>(pool);
  // Its table named in our schema: Kysely otherwise looks it up in every schema, and would take
  // another application's (a database shared) for ours.
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations }, migrationTableSchema: pinnedSearchPath });
  const result = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`Migration ${failed} failed: ${String(result.error)}`, { cause: result.error });
  }
  return { results: result.results ?? [], newer: [] };
}
