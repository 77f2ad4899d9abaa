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

/** 0600's function, with the locks taken first, in the same order (their keys'), so batches never wait on each other in a circle. */
const appendToStreamsLockingFirst = `
CREATE OR REPLACE FUNCTION append_to_streams(p_appends jsonb)
RETURNS TABLE (o_append int, o_revision bigint, o_transaction_id xid8, o_global_position bigint, o_error text, o_detail text)
LANGUAGE plpgsql AS $$
DECLARE
  v_append record;
  v_stream text;
BEGIN
  FOR v_stream IN
    SELECT d.stream FROM (SELECT DISTINCT a.value->>'stream' AS stream FROM jsonb_array_elements(p_appends) a) d
     ORDER BY hashtext(d.stream), d.stream
  LOOP
    PERFORM pg_advisory_xact_lock(1702, hashtext(v_stream));
  END LOOP;

  FOR v_append IN
    SELECT a.n::int AS n, a.value->>'stream' AS stream, (a.value->>'expected')::bigint AS expected, a.value->'events' AS events
      FROM jsonb_array_elements(p_appends) WITH ORDINALITY AS a(value, n)
     ORDER BY hashtext(a.value->>'stream'), a.n
  LOOP
    o_append := v_append.n;
    SELECT t.o_revision, t.o_transaction_id, t.o_global_position, t.o_error, t.o_detail
      INTO o_revision, o_transaction_id, o_global_position, o_error, o_detail
      FROM try_append_to_stream(
        v_append.stream,
        v_append.expected,
        ARRAY(SELECT (e->>'id')::uuid FROM jsonb_array_elements(v_append.events) e),
        ARRAY(SELECT e->>'type' FROM jsonb_array_elements(v_append.events) e),
        ARRAY(SELECT e->'data' FROM jsonb_array_elements(v_append.events) e),
        ARRAY(SELECT e->'metadata' FROM jsonb_array_elements(v_append.events) e)
      ) t;
    RETURN NEXT;
  END LOOP;
END $$`;
