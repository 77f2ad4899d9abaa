import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';

// What a read model holds, compared across generations: by the tests (rows) and by the soak
// (hashes, since a long run's tables are too big to hold twice in memory). Both order rows by
// their whole text form, so two generations built in different batches compare equal.

export async function tableRows(db: Kysely<unknown>, schema: string, table: string): Promise<Record<string, unknown>[]> {
  const result = await sql<Record<string, unknown>>`select * from ${sql.id(schema, table)} as t order by t::text`.execute(db);
  return result.rows;
}

async function tableNames(db: Kysely<unknown>, schema: string): Promise<string[]> {
  const names = await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = ${schema} order by 1`.execute(db);
  return names.rows.map((row) => row.name);
}

/** Every table of `schema` (a read schema's views or a generation's tables), rows in a stable order. */
export async function tablesOf(db: Kysely<unknown>, schema: string): Promise<Record<string, Record<string, unknown>[]>> {
  const tables: Record<string, Record<string, unknown>[]> = {};
  for (const name of await tableNames(db, schema)) tables[name] = await tableRows(db, schema, name);
  return tables;
}

export type TablesHash = { readonly rows: number; readonly hash: string };

/**
 * One hash over every table of `schema`, rows in the order of `tableRows`: equal hashes, equal
 * tables. Each row is hashed by PostgreSQL, so only 32 bytes a row travel.
 */
export async function tablesHash(db: Kysely<unknown>, schema: string): Promise<TablesHash> {
  const digest = createHash('sha256');
  let rows = 0;
  for (const name of await tableNames(db, schema)) {
    const result = await sql<{ rows: number; hash: string }>`
      select count(*)::int as rows, coalesce(string_agg(md5(t::text), '' order by t::text), '') as hash
      from ${sql.id(schema, name)} as t`.execute(db);
    const table = result.rows[0] ?? { rows: 0, hash: '' };
    digest.update(`${name}\u0000${table.rows}\u0000${table.hash}\u0000`);
    rows += table.rows;
  }
  return { rows, hash: digest.digest('hex') };
}
