import { sql, type Kysely, type Migration } from 'kysely';

/** Every function the migrations before this one made, by name (all overloads). */
const functions = ['append_to_stream', 'try_append_to_stream', 'append_to_streams', 'events_are_immutable', 'append_access_log', 'audit_rows_are_immutable'];

/**
 * Migration `0700_function_search_path`: our functions resolve `events`, `access_log` and each
 * other in `public` (and `pg_catalog`), whoever calls them with whatever `search_path`. Without
 * it they used the caller's: a session of the service's login left at PostgreSQL's default,
 * `"$user", public`, had `append_to_stream` append to an `events` in a schema named after the
 * login, which that login may create (see `search-path.ts`). `pg_temp` last, so not even the
 * caller's own temporary tables come first. A function added later sets it in its own
 * `CREATE FUNCTION`.
 */
export const functionSearchPathMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await alterFunctions(db, 'SET search_path = pg_catalog, public, pg_temp');
  },
  async down(db: Kysely<unknown>) {
    await alterFunctions(db, 'RESET search_path');
  },
};

async function alterFunctions(db: Kysely<unknown>, setting: string): Promise<void> {
  const names = functions.map((name) => `'${name}'`).join(', ');
  await sql.raw(`
    DO $$
    DECLARE
      f regprocedure;
    BEGIN
      FOR f IN SELECT p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace AND p.proname IN (${names})
      LOOP
        EXECUTE format('ALTER FUNCTION %s ${setting}', f);
      END LOOP;
    END $$`).execute(db);
}
