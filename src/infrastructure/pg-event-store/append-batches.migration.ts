import { sql, type Kysely, type Migration } from 'kysely';
import { appendToStreamFunction } from './pg-event-store.migration.js';

/**
 * Group commit: the appends that queue up while earlier ones are in flight go to the server as
 * one call of `append_to_streams`, one transaction and one WAL flush for them all, instead of a
 * round trip and a commit each.
 *
 * The checks of one append move into `try_append_to_stream`, which reports a conflict instead of
 * raising it: in a batch, one append's conflict must not undo the others. `append_to_stream`
 * keeps its signature and raises what that reports, so each rule is written once.
 */
export const appendBatchesMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql.raw(tryAppendToStreamFunction).execute(db);
    await sql.raw(appendToStreamWrapper).execute(db);
    await sql.raw(appendToStreamsFunction).execute(db);
  },

  async down(db: Kysely<unknown>) {
    await sql`DROP FUNCTION IF EXISTS append_to_streams(jsonb)`.execute(db);
    await sql.raw(appendToStreamFunction.replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION')).execute(db);
    await sql`DROP FUNCTION IF EXISTS try_append_to_stream(text, bigint, uuid[], text[], jsonb[], jsonb[])`.execute(db);
  },
};

/**
 * One append, as `append_to_stream` (0001) made it, with its two refusals returned rather than
 * raised: o_error `EV001` (not at the expected revision; o_detail is the revision or
 * `no_stream`) or `EV002` (some of the ids are already in the stream; o_detail lists them).
 */
const tryAppendToStreamFunction = `
CREATE FUNCTION try_append_to_stream(
  p_stream_id text,
  p_expected  bigint,
  p_ids       uuid[],
  p_types     text[],
  p_data      jsonb[],
  p_metadata  jsonb[],
  OUT o_revision bigint,
  OUT o_transaction_id xid8,
  OUT o_global_position bigint,
  OUT o_error text,
  OUT o_detail text
) LANGUAGE plpgsql AS $$
DECLARE
  v_count           int := cardinality(p_ids);
  v_current         bigint;
  v_id              uuid;
  v_mine            boolean;
  v_revision        bigint;
  v_transaction_id  xid8;
  v_global_position bigint;
  v_repeated        uuid[] := '{}';
BEGIN
  IF v_count IS NULL OR v_count = 0 THEN
    RAISE EXCEPTION 'append_to_stream needs at least one event' USING ERRCODE = '22023';
  END IF;

  PERFORM pg_advisory_xact_lock(1702, hashtext(p_stream_id));
  -- A statement after the lock: in READ COMMITTED it sees what the previous holder committed.
  SELECT e.revision INTO v_current FROM events e WHERE e.stream_id = p_stream_id ORDER BY e.revision DESC LIMIT 1;

  IF FOUND THEN
    -- Idempotency before the revision check, each id looked up by the id alone: see 0001.
    FOREACH v_id IN ARRAY p_ids LOOP
      SELECT e.stream_id = p_stream_id, e.revision, e.transaction_id, e.global_position
        INTO v_mine, v_revision, v_transaction_id, v_global_position
        FROM events e WHERE e.event_id = v_id
       ORDER BY e.stream_id = p_stream_id DESC LIMIT 1;
      IF v_mine THEN
        v_repeated := v_repeated || v_id;
        IF o_revision IS NULL OR v_revision > o_revision THEN
          o_revision := v_revision;
          o_transaction_id := v_transaction_id;
          o_global_position := v_global_position;
        END IF;
      END IF;
    END LOOP;
    IF cardinality(v_repeated) = v_count THEN
      RETURN;
    ELSIF cardinality(v_repeated) > 0 THEN
      o_revision := NULL;
      o_transaction_id := NULL;
      o_global_position := NULL;
      o_error := 'EV002';
      o_detail := array_to_string(v_repeated, ',');
      RETURN;
    END IF;
    IF p_expected = -1 OR (p_expected >= 0 AND p_expected <> v_current) THEN
      o_error := 'EV001';
      o_detail := v_current::text;
      RETURN;
    END IF;
  ELSE
    IF p_expected >= 0 OR p_expected = -3 THEN
      o_error := 'EV001';
      o_detail := 'no_stream';
      RETURN;
    END IF;
    v_current := -1;
  END IF;

  IF v_count = 1 THEN
    INSERT INTO events (stream_id, revision, event_id, event_type, data, metadata)
    VALUES (p_stream_id, v_current + 1, p_ids[1], p_types[1], p_data[1], p_metadata[1])
    RETURNING revision, transaction_id, global_position
    INTO o_revision, o_transaction_id, o_global_position;
    RETURN;
  END IF;

  -- Identity values are drawn in row order, so within a batch position order is revision order.
  WITH inserted AS (
    INSERT INTO events (stream_id, revision, event_id, event_type, data, metadata)
    SELECT p_stream_id, v_current + e.n, e.id, e.type, e.data, e.metadata
      FROM unnest(p_ids, p_types, p_data, p_metadata) WITH ORDINALITY AS e(id, type, data, metadata, n)
     ORDER BY e.n
    RETURNING revision, transaction_id, global_position
  )
  SELECT i.revision, i.transaction_id, i.global_position
    INTO o_revision, o_transaction_id, o_global_position
    FROM inserted i ORDER BY i.revision DESC LIMIT 1;
END $$`;

/** 0001's function, same signature and errors, now raising what `try_append_to_stream` reports. */
const appendToStreamWrapper = `
CREATE OR REPLACE FUNCTION append_to_stream(
  p_stream_id text,
  p_expected  bigint,
  p_ids       uuid[],
  p_types     text[],
  p_data      jsonb[],
  p_metadata  jsonb[],
  OUT o_revision bigint,
  OUT o_transaction_id xid8,
  OUT o_global_position bigint
) LANGUAGE plpgsql AS $$
DECLARE
  v_error  text;
  v_detail text;
BEGIN
  SELECT t.o_revision, t.o_transaction_id, t.o_global_position, t.o_error, t.o_detail
    INTO o_revision, o_transaction_id, o_global_position, v_error, v_detail
    FROM try_append_to_stream(p_stream_id, p_expected, p_ids, p_types, p_data, p_metadata) t;
  IF v_error = 'EV001' THEN
    RAISE EXCEPTION 'stream %: expected revision %, found %', p_stream_id, p_expected, v_detail
      USING ERRCODE = 'EV001', DETAIL = v_detail;
  ELSIF v_error = 'EV002' THEN
    RAISE EXCEPTION 'stream %: some event ids were already appended', p_stream_id
      USING ERRCODE = 'EV002', DETAIL = v_detail;
  END IF;
END $$`;

/**
 * Appends to many streams in one transaction. p_appends is a JSON array of
 * {"stream": text, "expected": bigint, "events": [{"id", "type", "data", "metadata"}]}: one
 * document, which the client writes with one JSON.stringify, where arrays of jsonb would be
 * escaped element by element.
 *
 * Returns a row per append (o_append, its 1-based place in p_appends) with its result or its
 * refusal, as try_append_to_stream gives them.
 *
 * Stream locks are taken in the order of their keys, not of the batch: two batches that share
 * streams (from two processes, or two connections of one) then wait for each other, and never
 * each for the other. Appends to one stream keep their order in the batch; a later one meets the
 * earlier one's events as every later append does.
 */
export const appendToStreamsFunction = `
CREATE FUNCTION append_to_streams(p_appends jsonb)
RETURNS TABLE (o_append int, o_revision bigint, o_transaction_id xid8, o_global_position bigint, o_error text, o_detail text)
LANGUAGE plpgsql AS $$
DECLARE
  v_append record;
BEGIN
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
