import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { readSchema } from '../../src/projections/runtime/projection.js';

// What a failed soak leaves behind to be explained by, besides the processes' logs (at warn, they
// say little): the event log, the read models as the query API served them, and the checkpoints,
// as the run left them, before its throwaway database is dropped. One JSON object a line, as
// PostgreSQL renders the row (`row_to_json`), so nothing is rounded or retyped on the way.

/** Rows fetched at a time: a ten-minute run's log does not fit in memory as one answer. */
const batchRows = 5_000;

type Source = { readonly file: string; readonly select: string };

/** The log and the checkpoints, as they are named on the search path; the log is ordered as read. */
const ownTables = [
  { name: 'events', order: 'transaction_id, global_position' },
  { name: 'projection_checkpoints', order: 't::text' },
  { name: 'process_checkpoints', order: 't::text' },
];

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * The tables to dump, of those made yet (a run stopped early has few or none): the log, the
 * checkpoints, and the read models' tables ordered as `tablesHash` orders them (by their text).
 */
async function sources(client: pg.Client, readModels: readonly string[]): Promise<Source[]> {
  const made = await client.query<{ name: string }>('select name from unnest($1::text[]) as t(name) where to_regclass(name) is not null', [ownTables.map((table) => table.name)]);
  const names = new Set(made.rows.map((row) => row.name));
  const readModelTables = await client.query<{ schema: string; name: string }>(
    'select table_schema as schema, table_name as name from information_schema.tables where table_schema = any($1) order by 1, 2',
    [readModels.map(readSchema)],
  );
  return [
    ...ownTables.filter((table) => names.has(table.name)).map((table) => ({ file: `${table.name}.ndjson`, select: `select * from ${ident(table.name)} t order by ${table.order}` })),
    ...readModelTables.rows.map((row) => ({ file: `${row.schema}.${row.name}.ndjson`, select: `select * from ${ident(row.schema)}.${ident(row.name)} t order by t::text` })),
  ];
}

/** Writes what `select` returns to `file`, a batch at a time through a cursor; the rows written. */
async function dumpOne(client: pg.Client, source: Source, file: string): Promise<number> {
  const out = await open(file, 'w');
  let written = 0;
  try {
    await client.query(`declare evidence no scroll cursor for select row_to_json(t)::text as line from (${source.select}) t`);
    for (;;) {
      const { rows } = await client.query<{ line: string }>(`fetch ${batchRows} from evidence`);
      if (rows.length === 0) break;
      await out.write(rows.map((row) => `${row.line}\n`).join(''));
      written += rows.length;
    }
    await client.query('close evidence');
  } finally {
    await out.close();
  }
  return written;
}

/**
 * Dumps the log, the read models `readModels` (their read schemas) and the checkpoints of the
 * database at `databaseUrl` into `dir`, one file a table, all from one snapshot; a line per file.
 */
export async function dumpEvidence(databaseUrl: string, dir: string, readModels: readonly string[]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const client = new pg.Client(databaseUrl);
  await client.connect();
  try {
    await client.query('begin isolation level repeatable read read only');
    const lines: string[] = [];
    for (const source of await sources(client, readModels)) {
      const rows = await dumpOne(client, source, path.join(dir, source.file));
      lines.push(`${source.file}: ${rows.toLocaleString('en-US')} rows`);
    }
    await client.query('commit');
    return lines.length > 0 ? lines : ['no tables yet'];
  } finally {
    await client.end();
  }
}
