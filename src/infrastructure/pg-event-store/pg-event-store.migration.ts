import { sql, type Kysely, type Migration } from 'kysely';

/**
 * The event store's schema. Raw DDL because most of it (xid8, identity, plpgsql) is beyond
 * kysely's schema builder, and because the SQL itself is the thing worth reviewing.
 *
 * Codes raised by `append_to_stream`, matched by `pg-event-store.ts`:
 * - `EV001` the stream is not at the expected revision; DETAIL is its revision or `no_stream`.
 * - `EV002` the batch repeats some event ids of the stream but not all; DETAIL lists them.
 * - `EV003` (the table's triggers) an UPDATE, DELETE or TRUNCATE of events.
 */
export const eventStoreMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // Keys are kept to the three the store reads by: (stream_id, revision) for streams,
    // (event_id, stream_id) for idempotent retries, (transaction_id, global_position) for the
    // global order. Each index is paid on every append, and the first two, keyed by random ids,
    // land on random pages: there is no separate streams table, which would be one more.
    //
    // transaction_id is the appending transaction's id. Readers of the global order only read
    // below the oldest running transaction, so an append that commits late can never land
    // behind a position a reader has already passed.
    //
    // hash is reserved for the audit chain (hash of the previous event's hash and this event),
    // which the append can extend under the stream's lock; nullable, so adding the chain needs
    // no table rewrite.
    await sql`
      CREATE TABLE events (
        global_position bigint      GENERATED ALWAYS AS IDENTITY,
        transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
        stream_id       text        NOT NULL,
        revision        bigint      NOT NULL,
        event_id        uuid        NOT NULL,
        event_type      text        NOT NULL,
        data            jsonb       NOT NULL,
        metadata        jsonb       NOT NULL,
        recorded_at     timestamptz NOT NULL DEFAULT now(),
        hash            bytea,
        CONSTRAINT events_stream_revision PRIMARY KEY (stream_id, revision),
        -- event_id first: looked up by id alone, the planner has this one index to choose. With
        -- stream_id first it was free to pick the primary key instead, and scan the stream.
        CONSTRAINT events_stream_event_id UNIQUE (event_id, stream_id)
      )`.execute(db);
    await sql`CREATE INDEX events_global_order ON events (transaction_id, global_position)`.execute(db);

    // The log is append-only: history that can be edited is no audit trail. Costs nothing on
    // insert, the only write the store makes.
    await sql`
      CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'events are immutable: % refused', TG_OP USING ERRCODE = 'EV003';
      END $$`.execute(db);
    await sql`
      CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE ON events
      FOR EACH ROW EXECUTE FUNCTION events_are_immutable()`.execute(db);
    await sql`
      CREATE TRIGGER events_not_truncated BEFORE TRUNCATE ON events
      FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable()`.execute(db);

    await sql.raw(appendToStreamFunction).execute(db);
  },

  async down(db: Kysely<unknown>) {
    await sql`DROP FUNCTION IF EXISTS append_to_stream(text, bigint, uuid[], text[], jsonb[], jsonb[])`.execute(db);
    await sql`DROP TABLE IF EXISTS events`.execute(db);
    await sql`DROP FUNCTION IF EXISTS events_are_immutable()`.execute(db);
  },
};

/**
 * Appends a batch in one call, so one round trip whatever the batch size.
 *
 * p_expected: >= 0 an exact revision, -1 no stream, -2 any, -3 the stream exists.
 * Returns the last event's revision and position; for a batch whose ids are all already in the
 * stream (a retry), those of the latest of them as originally appended, writing nothing.
 *
 * Appends to one stream serialise on a transaction-scoped advisory lock on the stream id
 * (the two-key form, in a key space of its own: 1702 and the id's hash; a hash collision only
 * serialises two streams' appends). Unlike a row lock it writes nothing to disk. The unique
 * keys stay as the backstop for anything that writes without the lock.
 *
 * It does not NOTIFY: a NOTIFY inside a transaction takes a database-wide lock held through the
 * commit's WAL flush, which serialises every appender (measured here: 8 writers fell from 8.1k
 * to 4.8k commits/s). The store notifies after commit instead.
 */
export const appendToStreamFunction = `
CREATE FUNCTION append_to_stream(
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
    -- Idempotency comes before the revision check: a retry of a batch that went through finds
    -- the stream moved on by exactly that batch. Each id is looked up by the id alone, and the
    -- stream compared after: given "stream_id = ..." in the scan, the cached generic plan may
    -- walk the whole stream by the primary key instead; given "event_id = ANY (...)", a young
    -- table without statistics gets a sequential scan. Either on every append.
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
      RAISE EXCEPTION 'stream %: some event ids were already appended', p_stream_id
        USING ERRCODE = 'EV002', DETAIL = array_to_string(v_repeated, ',');
    END IF;
    IF p_expected = -1 OR (p_expected >= 0 AND p_expected <> v_current) THEN
      RAISE EXCEPTION 'stream %: expected revision %, found %', p_stream_id, p_expected, v_current
        USING ERRCODE = 'EV001', DETAIL = v_current::text;
    END IF;
  ELSE
    IF p_expected >= 0 OR p_expected = -3 THEN
      RAISE EXCEPTION 'stream %: expected revision %, found no stream', p_stream_id, p_expected
        USING ERRCODE = 'EV001', DETAIL = 'no_stream';
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
