import { sql, type Kysely, type Migration } from 'kysely';
import { appendToStreamsFunction } from './append-batches.migration.js';

/**
 * A batch takes the lock of every stream it appends to before its first INSERT.
 *
 * The transaction id, the first part of every position, is drawn at a transaction's first
 * INSERT. `append_to_streams` (0600) took each stream's lock just before appending to it, so a
 * batch drew its id at its first stream and could then wait for a later stream's lock while
 * another appender, with a higher id, appended to that stream and committed. The batch's events
 * on that stream then came after the other's in revision and before them in the log: `$all`,
 * reads and subscriptions gave revision r+2 before r+1. (Only appends without an exact expected
 * revision could get there; an exact one was refused as a conflict instead.) Holding every lock
 * before the id is drawn makes the order of ids on a stream the order of its revisions.
 */
export const appendBatchLocksMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql.raw(appendToStreamsLockingFirst).execute(db);
  },

  async down(db: Kysely<unknown>) {
    await sql.raw(appendToStreamsFunction.replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION')).execute(db);
  },
};

/** Every stream's lock, in the order of their keys (as 0600 takes them), so batches never wait on each other in a circle. */
const lockEveryStreamFirst = `
  FOR v_stream IN
    SELECT d.stream FROM (SELECT DISTINCT a.value->>'stream' AS stream FROM jsonb_array_elements(p_appends) a) d
     ORDER BY hashtext(d.stream), d.stream
  LOOP
    PERFORM pg_advisory_xact_lock(1702, hashtext(v_stream));
  END LOOP;
`;

/** 0600's function, the locks taken before its loop of appends. */
const appendToStreamsLockingFirst = withLocksFirst(appendToStreamsFunction);

function withLocksFirst(definition: string): string {
  const patched = definition
    .replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION')
    .replace('  v_append record;\nBEGIN\n', `  v_append record;\n  v_stream text;\nBEGIN\n${lockEveryStreamFirst}\n`);
  if (!patched.includes('v_stream text;')) throw new Error('0610: append_to_streams (0600) is not the function this migration patches');
  return patched;
}
