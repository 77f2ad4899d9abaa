import type pg from 'pg';
import { ConfigError } from '../config/config.js';

/**
 * Where every connection of ours resolves unqualified names (`events`, `access_log`, the read
 * models' tables): `public` alone, which only the migrating owner may create in.
 *
 * PostgreSQL's default, `"$user", public`, looks first in a schema named after the login; the
 * service's login may create schemas (the projector makes one per generation), so whoever holds
 * it could make that schema, put an `events` of their own in it (a copy without the triggers,
 * free to edit), and have every later connection of the service read and append there. Set by
 * a statement of its own, as `idle_in_transaction_session_timeout` is: a startup `options` could
 * be replaced by one in the URL, and some poolers drop it. Projection transactions still narrow
 * it to a generation's schema, transaction-scoped (`withSearchPath`).
 */
export const pinnedSearchPath = 'public';

/** Pins `search_path` for the rest of the client's session; a client whose pin fails must not be used. */
export async function pinSearchPath(client: pg.ClientBase): Promise<void> {
  await client.query(`SET search_path = ${pinnedSearchPath}`);
}

/**
 * Refuses a database whose tables were made outside `public`: releases before the pin made them
 * wherever PostgreSQL's default path put them, which for an owner with a schema of its own name
 * (PostgreSQL's recommended pattern on 15 and later, where `public` is closed to others) was
 * that schema. Pinned, such a deployment would find none of them: migrations would fail on their
 * own lock table, or start a second, empty log in `public`. Told, the owner moves them once.
 */
export async function assertTablesInPublic(pool: pg.Pool): Promise<void> {
  // Ours, not another Kysely-migrated application's sharing the database: the migrations table
  // beside an events table guarded by our trigger.
  const { rows } = await pool.query<{ schema: string }>(
    `SELECT n.nspname AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = 'kysely_migration' AND c.relkind IN ('r', 'p') AND n.nspname <> $1
        AND to_regclass(format('%I.kysely_migration', $1::text)) IS NULL
        AND EXISTS (SELECT 1 FROM pg_trigger t JOIN pg_class e ON e.oid = t.tgrelid
                     WHERE e.relnamespace = n.oid AND e.relname = 'events' AND t.tgname = 'events_immutable')
      LIMIT 1`,
    [pinnedSearchPath],
  );
  const elsewhere = rows[0]?.schema;
  if (elsewhere === undefined) return;
  throw new ConfigError(
    `The service's tables are in schema "${elsewhere}", not in "${pinnedSearchPath}", where every connection of this release looks for them. ` +
      `Move them once, as their owner, with every process stopped: ALTER SCHEMA "${pinnedSearchPath}" RENAME TO "${pinnedSearchPath}_old"; ALTER SCHEMA "${elsewhere}" RENAME TO "${pinnedSearchPath}"; (README, "Audit")`,
  );
}
