import pg from 'pg';
import {
  checkAppend,
  ConcurrencyError,
  DuplicateEventError,
  type AppendResult,
  type EventFilter,
  type EventStore,
  type ExpectedRevision,
  type JsonObject,
  type NewEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type ReadStreamResult,
  type RecordedEvent,
  type SubscribeOptions,
} from '../../application/ports/event-store.js';
import { comparePositions, START, type Position } from '../../application/ports/position.js';
import { pinSearchPath } from '../postgres/search-path.js';
import { Batcher, type Outcome } from './batcher.js';
import { sleep } from '../../application/sleep.js';

export type PgEventStoreOptions = {
  /**
   * LISTEN/NOTIFY channel on which appends wake subscribers; every store on one database must
   * use the same one. Default `event_store`.
   */
  readonly channel?: string;
  /**
   * How long a caught-up subscriber waits for a notification before it looks anyway: for a
   * notification lost with a dropped connection, and for a held-back horizon released by a
   * transaction that appends nothing (a rollback, a read-model write). Default 1000 ms.
   */
  readonly pollIntervalMs?: number;
  /**
   * How often the LISTEN connection is asked a `SELECT 1`; one not answered within as long again
   * is taken for dead, and the connection reopened; a reopening not answered within it is given
   * up and tried again. Default 5000 ms.
   */
  readonly listenerHeartbeatMs?: number;
  /**
   * Least time between two notifications from this store: appends within it are announced
   * together, which bounds the NOTIFY traffic under load at the cost of that much latency.
   * Default 10 ms.
   */
  readonly notifyIntervalMs?: number;
  /** Events per query when reading a stream, `$all` or catching up. Default 1000. */
  readonly pageSize?: number;
  /** After how long a subscriber held back by an open transaction reports it. Default 5000 ms. */
  readonly stallWarningMs?: number;
  /** Told, every `stallWarningMs` while it lasts, which transaction holds subscribers back. */
  readonly onStall?: (stall: HorizonStall) => void;
  /** Whether `close()` ends the pool too: yes when the store is the pool's only user. */
  readonly closePool?: boolean;
  /**
   * Appends, and reads of a stream's first page, sent at once (each kind its own count); those
   * that come while as many are in flight wait, and go together when one finishes: appends as
   * one transaction (group commit), reads as one query. Default 2.
   */
  readonly batchConcurrency?: number;
  /** Most appends, or reads, sent together. Default 100. */
  readonly maxBatch?: number;
};

/** The transaction that the global order is waiting for: the oldest one still running. */
export type HorizonHolder = {
  /** Backend process id; `undefined` for a prepared (two-phase) transaction, which has none. */
  readonly pid: number | undefined;
  /** Its transaction id: events at or above it are not delivered until it ends. */
  readonly xid: bigint;
  /** Time since the transaction began. */
  readonly ageMs: number;
  readonly database: string | undefined;
  readonly applicationName: string | undefined;
  /** `active`, `idle in transaction`, …, or `prepared`. */
  readonly state: string | undefined;
  /** The last statement it ran (truncated), or a prepared transaction's gid. */
  readonly query: string | undefined;
};

export type HorizonStall = {
  /** How long committed events have waited behind the horizon. */
  readonly heldForMs: number;
  /** `undefined` when the holder ended between the two looks. */
  readonly holder: HorizonHolder | undefined;
};

type EventRow = {
  global_position: string;
  transaction_id: string;
  stream_id: string;
  revision: string;
  event_id: string;
  event_type: string;
  data: JsonObject;
  metadata: JsonObject;
  /** Epoch milliseconds. */
  recorded_at: number;
};

/** `o_written`: the append wrote its events, rather than finding them written (see `AppendResult`). */
type AppendRow = { o_revision: string; o_transaction_id: string; o_global_position: string; o_written: boolean };

type HolderRow = {
  pid: number | null;
  xid: string;
  age_ms: number;
  database: string | null;
  application_name: string | null;
  state: string | null;
  query: string | null;
};

/** A catch-up page: the event columns are all null in the one row of a page without events. */
type CatchUpRow = { horizon: string; held: boolean } & (EventRow | { [K in keyof EventRow]: null });

// recorded_at as epoch milliseconds: a Date from a number costs a fraction of parsing the
// timestamp text, and reading $all is bound by the client's work per row. (numeric first, so
// the milliseconds are exact before they become a float.)
/** The columns an `EventRow` is read from, of the events table known as `table` in the query. */
function eventColumnsOf(table: string): string {
  return `${table}.global_position, ${table}.transaction_id, ${table}.stream_id, ${table}.revision, ${table}.event_id,
  ${table}.event_type, ${table}.data, ${table}.metadata, (extract(epoch FROM ${table}.recorded_at) * 1000)::float8 AS recorded_at`;
}

const eventColumns = eventColumnsOf('events');

/**
 * How column text becomes values, for the few types the store reads, fixed here rather than
 * taken from the process-wide `pg.types`, which other libraries change (emmett's dumbo turns
 * every int8 into a BigInt and installs its own JSON parser). Everything else stays text.
 */
const parsers: Record<number, (text: string) => unknown> = {
  16: (text) => text === 't', // bool
  23: Number, // int4
  701: Number, // float8
  3802: (text) => JSON.parse(text), // jsonb
};
const asText = (text: string) => text;
const columnTypes: pg.CustomTypesConfig = { getTypeParser: (oid: number) => parsers[oid] ?? asText };

/** `append_to_stream`'s encoding of the expected revisions that are not numbers. */
const expectedCode = { no_stream: -1, any: -2, stream_exists: -3 } as const;

function expectedParameter(expected: ExpectedRevision): number {
  return typeof expected === 'number' ? expected : expectedCode[expected];
}

/** A read of a stream's first page, forwards, waiting for its turn to be sent. */
type StreamHeadRead = { readonly streamId: string; readonly from: number; readonly limit: number };
type StreamHead = { events: RecordedEvent[]; exists: boolean };

/** An append waiting for its turn to be sent. */
type PendingAppend = { readonly streamId: string; readonly events: readonly NewEvent[]; readonly expected: ExpectedRevision };

/**
 * Whether the append functions' answer is this transaction's own write: when every id was in the
 * stream already they answer with the original append's row, written by an earlier transaction,
 * and this one, having written nothing, has no transaction id. Evaluated after the call.
 */
const writtenByThisTransaction = 'coalesce(o_transaction_id = pg_current_xact_id_if_assigned(), false) AS o_written';

const channelPattern = /^[a-z_][a-z0-9_]{0,62}$/;
const maxBigint = 9223372036854775807n;
/** Longest wait between looks while committed events wait behind an open transaction. */
const heldPollCapMs = 100;

/**
 * The EventStore port on PostgreSQL.
 *
 * An append is one statement, so one round trip whatever the batch: a plain INSERT for a new
 * stream, else a call of `append_to_stream` (see the migration). Appends that arrive while
 * `batchConcurrency` are in flight wait and go together, one call of `append_to_streams`, one
 * transaction and one commit for all of them, each still checked on its own (group commit); reads
 * of streams' first pages likewise go together as one query (see `batcher.ts`). The global order is
 * (transaction id, global position), read only below the oldest running transaction, so it is
 * final when read: a transaction that commits late always has a transaction id above
 * everything already delivered. Positions are that pair: `commit` the transaction id,
 * `prepare` the global position.
 *
 * Subscriptions catch up page by page, then wait for a NOTIFY, which appends send after they
 * commit, with a slow poll behind it. A query that fails ends the subscription with its error;
 * the subscriber resumes from its last position.
 */
export class PgEventStore implements EventStore {
  private readonly channel: string;
  private readonly pollIntervalMs: number;
  private readonly pageSize: number;
  private readonly stallWarningMs: number;
  private readonly onStall: ((stall: HorizonStall) => void) | undefined;
  private readonly closePool: boolean;
  private readonly listener: ChannelListener;
  private readonly notifier: Notifier;
  private readonly appends: Batcher<PendingAppend, AppendRow>;
  private readonly streamHeads: Batcher<StreamHeadRead, StreamHead>;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    options: PgEventStoreOptions = {},
  ) {
    this.channel = options.channel ?? 'event_store';
    if (!channelPattern.test(this.channel)) throw new RangeError(`Invalid channel name ${this.channel}`);
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.pageSize = options.pageSize ?? 1000;
    this.stallWarningMs = options.stallWarningMs ?? 5000;
    this.onStall = options.onStall;
    this.closePool = options.closePool ?? false;
    const heartbeatMs = options.listenerHeartbeatMs ?? 5000;
    this.listener = new ChannelListener(
      // A connect to a host that takes no packets would wait out the OS's TCP timeout (minutes),
      // and no other attempt is made meanwhile: it fails instead and is retried (`retryAfter`).
      () => new pg.Client({ ...pool.options, keepAlive: true, query_timeout: heartbeatMs, connectionTimeoutMillis: heartbeatMs }),
      this.channel,
      this.pollIntervalMs,
      heartbeatMs,
    );
    this.notifier = new Notifier(pool, this.channel, options.notifyIntervalMs ?? 10);
    const limits = { concurrency: options.batchConcurrency ?? 2, maxBatch: options.maxBatch ?? 100 };
    this.appends = new Batcher(
      (append) => this.appendAlone(append),
      (appends) => this.appendTogether(appends),
      limits,
    );
    this.streamHeads = new Batcher(
      ({ streamId, from, limit }) => this.readFirstStreamPage(streamId, false, from, limit),
      (reads) => this.readFirstStreamPages(reads),
      limits,
    );
  }

  async appendToStream(
    streamId: string,
    events: readonly NewEvent[],
    options: { readonly expectedRevision?: ExpectedRevision } = {},
  ): Promise<AppendResult> {
    this.assertOpen();
    const expected = options.expectedRevision ?? 'any';
    checkAppend(streamId, events, expected);
    const ids = events.map((event) => event.id);
    const seen = new Set<string>();
    const repeatedInBatch = ids.filter((id) => seen.has(id) || !seen.add(id));
    if (repeatedInBatch.length > 0) throw new DuplicateEventError(streamId, [...new Set(repeatedInBatch)]);
    const row = await this.appends.submit({ streamId, events, expected });
    this.notifier.notify();
    return {
      revision: Number(row.o_revision),
      position: { commit: BigInt(row.o_transaction_id), prepare: BigInt(row.o_global_position) },
      written: row.o_written,
    };
  }

  /** One append as one statement: the store's path whenever no other append is waiting. */
  private async appendAlone({ streamId, events, expected }: PendingAppend): Promise<AppendRow> {
    let row: AppendRow | undefined;
    try {
      if (expected === 'no_stream') row = await this.createStream(streamId, events);
      const [single] = events;
      row ??= (
        await this.query<AppendRow>(
          // Named, so each connection parses and plans it once. One event, the usual case, goes
          // as plain parameters made into arrays by PostgreSQL: encoding array literals (every
          // JSON document escaped character by character) costs more than the rest of the call.
          events.length === 1 && single
            ? {
                name: 'append_to_stream_1',
                text: `SELECT o_revision, o_transaction_id, o_global_position, ${writtenByThisTransaction}
                  FROM append_to_stream($1, $6, ARRAY[$2::uuid], ARRAY[$3::text], ARRAY[$4::jsonb], ARRAY[$5::jsonb])`,
                values: [streamId, single.id, single.type, single.data, single.metadata, expectedParameter(expected)],
              }
            : {
                name: 'append_to_stream',
                text: `SELECT o_revision, o_transaction_id, o_global_position, ${writtenByThisTransaction} FROM append_to_stream($1, $6, $2, $3, $4, $5)`,
                values: [...arrayParameters(streamId, events), expectedParameter(expected)],
              },
        )
      ).rows[0];
    } catch (error) {
      throw appendError(error, streamId, expected);
    }
    if (!row) throw new Error(`Stream ${streamId}: append_to_stream returned no row`);
    return row;
  }

  /**
   * Appends that queued up behind others, as one call of `append_to_streams`: one round trip and
   * one commit for them all, each append still checked on its own (see the migration).
   */
  private async appendTogether(appends: readonly PendingAppend[]): Promise<Array<Outcome<AppendRow>>> {
    const batch = appends.map(({ streamId, events, expected }) => ({
      stream: streamId,
      expected: expectedParameter(expected),
      events: events.map(({ id, type, data, metadata }) => ({ id, type, data, metadata })),
    }));
    const { rows } = await this.query<AppendRow & { o_append: number; o_error: string | null; o_detail: string | null }>({
      name: 'append_to_streams',
      text: `SELECT o_append, o_revision, o_transaction_id, o_global_position, o_error, o_detail, ${writtenByThisTransaction}
        FROM append_to_streams($1::jsonb)`,
      values: [JSON.stringify(batch)],
    });
    const outcomes: Array<Outcome<AppendRow>> = [];
    // Two copies of one command queued up together: the second finds the first's events, written
    // by this very transaction. The first of them in the batch wrote them.
    const writtenIds = new Set<string>();
    for (const row of [...rows].sort((a, b) => a.o_append - b.o_append)) {
      const append = appends[row.o_append - 1];
      if (!append) throw new Error(`append_to_streams answered for append ${row.o_append} of ${appends.length}`);
      if (row.o_error !== null) {
        outcomes[row.o_append - 1] = { ok: false, error: refusal(append.streamId, append.expected, row.o_error, row.o_detail) };
        continue;
      }
      const written = row.o_written && !append.events.some((event) => writtenIds.has(event.id));
      if (written) for (const event of append.events) writtenIds.add(event.id);
      outcomes[row.o_append - 1] = { ok: true, value: { ...row, o_written: written } };
    }
    return outcomes;
  }

  /**
   * The commonest append, a new stream, as one plain INSERT: a third cheaper than the function,
   * whose checks a new stream does not need. The unique key on (stream, revision) is what
   * refuses it when the stream exists; then `undefined`, and the function sorts a retry from a
   * conflict. It takes the stream's lock like the function does, so that it never slips in
   * between the function's look at the stream and its insert.
   */
  private async createStream(streamId: string, events: readonly NewEvent[]): Promise<AppendRow | undefined> {
    const [single] = events;
    // One event, the usual case, goes as plain parameters: arrays cost a sixth more to encode
    // and decode than the whole rest of the statement.
    const query: pg.QueryConfig =
      events.length === 1 && single
        ? {
            name: 'create_stream_1',
            text: `INSERT INTO events (stream_id, revision, event_id, event_type, data, metadata)
              SELECT $1, 0, $2::uuid, $3, $4::jsonb, $5::jsonb FROM (SELECT pg_advisory_xact_lock(1702, hashtext($1))) AS stream_lock
              RETURNING revision AS o_revision, transaction_id AS o_transaction_id, global_position AS o_global_position, true AS o_written`,
            values: [streamId, single.id, single.type, single.data, single.metadata],
          }
        : {
            name: 'create_stream',
            text: `INSERT INTO events (stream_id, revision, event_id, event_type, data, metadata)
              SELECT $1, e.n - 1, e.id, e.type, e.data, e.metadata
                FROM (SELECT pg_advisory_xact_lock(1702, hashtext($1))) AS stream_lock,
                     unnest($2::uuid[], $3::text[], $4::jsonb[], $5::jsonb[]) WITH ORDINALITY AS e(id, type, data, metadata, n)
               ORDER BY e.n
              RETURNING revision AS o_revision, transaction_id AS o_transaction_id, global_position AS o_global_position, true AS o_written`,
            values: arrayParameters(streamId, events),
          };
    try {
      const result = await this.query<AppendRow>(query);
      return result.rows[result.rows.length - 1];
    } catch (error) {
      if (error instanceof pg.DatabaseError && error.code === '23505') return undefined;
      throw error;
    }
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    this.assertOpen();
    const backwards = options.direction === 'backwards';
    const from = options.from ?? (backwards ? Number.MAX_SAFE_INTEGER : 0);
    const maxCount = Math.max(0, options.maxCount ?? Number.POSITIVE_INFINITY);
    const firstLimit = Math.min(this.pageSize, maxCount);
    const { events: first, exists } = backwards
      ? await this.readFirstStreamPage(streamId, true, from, firstLimit)
      : await this.streamHeads.submit({ streamId, from, limit: firstLimit });
    if (!exists) return { status: 'no_stream' };
    let prefetched: RecordedEvent[] | undefined = first;
    const pages = async function* (store: PgEventStore): AsyncGenerator<RecordedEvent> {
      let page = prefetched ?? (await store.readStreamPage(streamId, backwards, from, Math.min(store.pageSize, maxCount)));
      prefetched = undefined;
      let left = maxCount;
      for (;;) {
        yield* page;
        left -= page.length;
        const last = page[page.length - 1];
        if (!last || left <= 0 || page.length < store.pageSize) return;
        const next = backwards ? last.revision - 1 : last.revision + 1;
        page = await store.readStreamPage(streamId, backwards, next, Math.min(store.pageSize, left));
      }
    };
    return { status: 'found', events: { [Symbol.asyncIterator]: () => pages(this) } };
  }

  readAll(options: ReadAllOptions = {}): AsyncIterable<RecordedEvent> {
    return { [Symbol.asyncIterator]: () => this.readAllPages(options) };
  }

  subscribeToAll(options: SubscribeOptions = {}): AsyncIterable<RecordedEvent> {
    return { [Symbol.asyncIterator]: () => this.subscribe(options) };
  }

  /**
   * The transaction holding back the horizon below which `readAll` and subscriptions read, or
   * `undefined` when none is running. Any transaction on the server that has written something
   * counts, in any database: a long one delays every subscriber, which is why this is exposed.
   */
  async oldestInFlightTransaction(): Promise<HorizonHolder | undefined> {
    this.assertOpen();
    const result = await this.query<HolderRow>({
      text: `WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin)
       SELECT a.pid, h.xmin::text AS xid,
              (extract(epoch FROM clock_timestamp() - a.xact_start) * 1000)::float8 AS age_ms,
              a.datname AS database, a.application_name, a.state, left(a.query, 500) AS query
         FROM horizon h JOIN pg_stat_activity a ON a.backend_xid = xid(h.xmin)
       UNION ALL
       SELECT NULL, h.xmin::text, (extract(epoch FROM clock_timestamp() - p.prepared) * 1000)::float8,
              p.database, NULL, 'prepared', p.gid
         FROM horizon h JOIN pg_prepared_xacts p ON p.transaction = xid(h.xmin)
       LIMIT 1`,
    });
    const row = result.rows[0];
    if (!row) return undefined;
    return {
      pid: row.pid ?? undefined,
      xid: BigInt(row.xid),
      ageMs: row.age_ms,
      database: row.database ?? undefined,
      applicationName: row.application_name ?? undefined,
      state: row.state ?? undefined,
      query: row.query ?? undefined,
    };
  }

  /**
   * `readAll` shows an event only once every transaction older than its own has ended: a
   * committed event waits behind one still open. Every transaction that committed before this
   * call has an id below the snapshot's xmax; once the horizon (the oldest id still running) has
   * reached that xmax, `readAll` shows them all.
   */
  async committedVisible(timeoutMs: number): Promise<boolean> {
    this.assertOpen();
    const deadline = performance.now() + timeoutMs;
    const first = await this.query<{ xmax: string; passed: boolean }>({
      text: 'SELECT pg_snapshot_xmax(s)::text AS xmax, pg_snapshot_xmin(s) >= pg_snapshot_xmax(s) AS passed FROM pg_current_snapshot() s',
    });
    const row = first.rows[0];
    if (!row || row.passed) return true;
    for (let pauseMs = 5; ; pauseMs = Math.min(pauseMs * 2, 100)) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await sleep(Math.min(pauseMs, left));
      const now = await this.query<{ passed: boolean }>({ text: 'SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::xid8 AS passed', values: [row.xmax] });
      if (now.rows[0]?.passed) return true;
    }
  }

  /**
   * The last event below the horizon: every transaction with an id below it has ended, so no
   * event will ever read before this one that does not now; later ones have ids at or above it.
   * Ordered by the columns, qualified: a bare name in ORDER BY means the output column, here its
   * text, and '989' sorts after '1020'.
   */
  async headPosition(): Promise<Position> {
    this.assertOpen();
    const result = await this.query<{ transaction_id: string; global_position: string }>({
      name: 'head_position',
      text: `SELECT transaction_id::text AS transaction_id, global_position::text AS global_position FROM events
        WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1`,
    });
    const row = result.rows[0];
    return row ? { commit: BigInt(row.transaction_id), prepare: BigInt(row.global_position) } : START;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.listener.close();
    await this.notifier.settled();
    if (this.closePool) await this.pool.end();
  }

  /**
   * The first page and whether the stream exists at all, in one round trip: the command loop reads
   * a cached stream's tail before every command, and that tail is usually empty.
   */
  private async readFirstStreamPage(
    streamId: string,
    backwards: boolean,
    from: number,
    limit: number,
  ): Promise<{ events: RecordedEvent[]; exists: boolean }> {
    const page = backwards
      ? 'SELECT * FROM events WHERE stream_id = $1 AND revision <= $2 ORDER BY revision DESC LIMIT $3'
      : 'SELECT * FROM events WHERE stream_id = $1 AND revision >= $2 ORDER BY revision LIMIT $3';
    const result = await this.query<Partial<EventRow> & { stream_exists: boolean }>({
      name: backwards ? 'read_stream_first_backwards' : 'read_stream_first_forwards',
      text: `SELECT s.stream_exists, ${eventColumnsOf('e')}
        FROM (SELECT EXISTS (SELECT 1 FROM events WHERE stream_id = $1) AS stream_exists) AS s
        LEFT JOIN LATERAL (${page}) AS e ON true`,
      values: [streamId, from, Math.max(0, limit)],
    });
    const exists = result.rows[0]?.stream_exists ?? false;
    const events = result.rows.flatMap((row) => (isEventRow(row) ? [toRecordedEvent(row)] : []));
    return { events, exists };
  }

  /** Several streams' first pages (forwards), in one round trip: the reads that queued up together. */
  private async readFirstStreamPages(reads: readonly StreamHeadRead[]): Promise<Array<Outcome<StreamHead>>> {
    const result = await this.query<Partial<EventRow> & { n: number; stream_exists: boolean }>({
      name: 'read_stream_heads',
      text: `SELECT r.n::int4 AS n, s.stream_exists, ${eventColumnsOf('e')}
        FROM unnest($1::text[], $2::int8[], $3::int4[]) WITH ORDINALITY AS r(stream_id, from_revision, page, n)
        CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM events WHERE stream_id = r.stream_id) AS stream_exists) AS s
        LEFT JOIN LATERAL (
          SELECT * FROM events WHERE stream_id = r.stream_id AND revision >= r.from_revision ORDER BY revision LIMIT r.page
        ) AS e ON true
        ORDER BY r.n, e.revision`,
      values: [reads.map((read) => read.streamId), reads.map((read) => read.from), reads.map((read) => Math.max(0, read.limit))],
    });
    const heads: StreamHead[] = reads.map(() => ({ events: [], exists: false }));
    for (const row of result.rows) {
      const head = heads[row.n - 1];
      if (!head) throw new Error(`read_stream_heads answered for read ${row.n} of ${reads.length}`);
      head.exists = row.stream_exists;
      if (isEventRow(row)) head.events.push(toRecordedEvent(row));
    }
    return heads.map((value) => ({ ok: true, value }));
  }

  private async readStreamPage(streamId: string, backwards: boolean, from: number, limit: number): Promise<RecordedEvent[]> {
    if (limit <= 0) return [];
    const result = await this.query<EventRow>({
      name: backwards ? 'read_stream_backwards' : 'read_stream_forwards',
      text: backwards
        ? `SELECT ${eventColumns} FROM events WHERE stream_id = $1 AND revision <= $2 ORDER BY revision DESC LIMIT $3`
        : `SELECT ${eventColumns} FROM events WHERE stream_id = $1 AND revision >= $2 ORDER BY revision LIMIT $3`,
      values: [streamId, from, limit],
    });
    return result.rows.map(toRecordedEvent);
  }

  /**
   * Written by hand rather than as an async generator: a generator resumes once per event, and at
   * a few hundred thousand events a second that machinery is a good part of the cost.
   */
  private readAllPages(options: ReadAllOptions): AsyncIterator<RecordedEvent> {
    this.assertOpen();
    const where = filterSql(options.filter, 4);
    const text = `SELECT ${eventColumns} FROM events
      WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
        AND (transaction_id, global_position) > ($1::xid8, $2::bigint) ${where.sql}
      ORDER BY transaction_id, global_position LIMIT $3`;
    const fetchPage = async (after: Position, limit: number): Promise<{ page: RecordedEvent[]; limit: number }> => {
      // Rows as arrays: no intermediate object per row, which is most of what a long read allocates.
      const result = await this.pool.query<EventTuple>({
        name: `read_all${where.name}`,
        text,
        values: [after.commit.toString(), after.prepare.toString(), limit, ...where.values],
        rowMode: 'array',
        types: columnTypes,
      });
      return { page: result.rows.map(tupleToRecordedEvent), limit };
    };
    let left = Math.max(0, options.maxCount ?? Number.POSITIVE_INFINITY);
    let page: RecordedEvent[] = [];
    let index = 0;
    let next: Promise<{ page: RecordedEvent[]; limit: number }> | undefined =
      left > 0 ? fetchPage(options.after ?? START, Math.min(this.pageSize, left)) : undefined;
    const done: IteratorReturnResult<undefined> = { done: true, value: undefined };
    return {
      next: async (): Promise<IteratorResult<RecordedEvent>> => {
        while (index >= page.length) {
          if (!next) return done;
          const fetched: { page: RecordedEvent[]; limit: number } = await next;
          page = fetched.page;
          index = 0;
          left -= page.length;
          const last = page[page.length - 1];
          // The next page is asked for before this one is handed out, so PostgreSQL finds it while
          // the consumer works through this one. An abandoned iteration leaves one page unread.
          next = last && page.length === fetched.limit && left > 0 ? fetchPage(last.position, Math.min(this.pageSize, left)) : undefined;
          next?.catch(() => undefined);
        }
        const value = page[index++];
        return value ? { done: false, value } : done;
      },
      return: async (): Promise<IteratorResult<RecordedEvent>> => {
        next = undefined;
        page = [];
        return done;
      },
    };
  }

  private async *subscribe(options: SubscribeOptions): AsyncGenerator<RecordedEvent> {
    this.assertOpen();
    const { signal } = options;
    const where = filterSql(options.filter, 4);
    // One statement reads a page, the horizon it read below, and whether committed events wait
    // above that horizon: one snapshot, so the three agree. `max` rather than EXISTS: it is one
    // probe of the index end, where EXISTS may scan the table while it has no statistics yet.
    const text = `SELECT h.horizon::text AS horizon,
        coalesce((SELECT max(transaction_id) FROM events) >= h.horizon, false) AS held, e.*
      FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS horizon) h
      LEFT JOIN LATERAL (
        SELECT ${eventColumns} FROM events
         WHERE transaction_id < h.horizon
           AND (transaction_id, global_position) > ($1::xid8, $2::bigint) ${where.sql}
         ORDER BY transaction_id, global_position LIMIT $3
      ) e ON true`;
    // Where the next query starts: the last event delivered, or past the horizon of a page that
    // came back short (everything below it has been seen), so a filter that rarely matches does
    // not rescan the same tail on every wake-up.
    let cursor = options.after ?? START;
    let woken = false;
    let wake: (() => void) | undefined;
    const stopListening = this.listener.add(() => {
      woken = true;
      wake?.();
    });
    let heldSince: number | undefined;
    let nextStallReport = 0;
    let heldBackoffMs = 0;
    // The horizon of the last look: a look that finds it moved is held by another transaction.
    let lastHorizon: bigint | undefined;
    try {
      while (!signal?.aborted && !this.closed) {
        woken = false;
        // Prepared, as every frequent statement of the store is: planned anew on each of the
        // hundreds of wake-ups a second under load, its planning cost as much as its execution.
        const result = await this.query<CatchUpRow>({
          name: `subscribe${where.name}`,
          text,
          values: [cursor.commit.toString(), cursor.prepare.toString(), this.pageSize, ...where.values],
        });
        let delivered = 0;
        for (const row of result.rows) {
          if (row.global_position === null) continue;
          const event = toRecordedEvent(row);
          cursor = event.position;
          delivered += 1;
          yield event;
          if (signal?.aborted || this.closed) return;
        }
        if (delivered === this.pageSize) continue;

        const first = result.rows[0];
        if (!first) throw new Error('the catch-up query returned no row');
        const horizon = BigInt(first.horizon);
        const belowHorizon = { commit: horizon - 1n, prepare: maxBigint };
        if (comparePositions(cursor, belowHorizon) < 0) cursor = belowHorizon;

        const horizonMoved = horizon !== lastHorizon;
        lastHorizon = horizon;
        if (first.held) {
          // Committed events wait behind an open transaction, which may end without a
          // notification (a rollback, a write elsewhere): look again soon, then less often.
          // Under load some transaction is nearly always open, so "held" is the usual state: the
          // waits and the stall are those of one holder. Kept across holders, the wait grew to
          // its cap and added it to every event's latency whenever no append's notification came
          // sooner, and a stall was reported under any steady load. Capped low: the wait is for a
          // transaction to end, typically within milliseconds, and the look is one cheap probe.
          const now = Date.now();
          if (heldSince === undefined || horizonMoved) {
            heldSince = now;
            nextStallReport = now + this.stallWarningMs;
            heldBackoffMs = 2;
          } else {
            if (now >= nextStallReport) {
              nextStallReport = now + this.stallWarningMs;
              void this.reportStall(now - heldSince);
            }
            heldBackoffMs = Math.min(this.pollIntervalMs, heldPollCapMs, heldBackoffMs * 2);
          }
        } else {
          heldSince = undefined;
          heldBackoffMs = 0;
        }
        const waitMs = first.held ? heldBackoffMs : this.pollIntervalMs;
        if (woken) continue;
        this.listener.ensureListening();
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            signal?.removeEventListener('abort', done);
            wake = undefined;
            resolve();
          };
          const timer = setTimeout(done, waitMs);
          signal?.addEventListener('abort', done, { once: true });
          wake = done;
        });
      }
    } finally {
      stopListening();
    }
  }

  /** Every query of the store goes through here, with the store's own type parsers. */
  private query<Row extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<Row>> {
    return this.pool.query<Row>({ ...config, types: columnTypes });
  }

  private async reportStall(heldForMs: number): Promise<void> {
    if (!this.onStall) return;
    try {
      this.onStall({ heldForMs, holder: await this.oldestInFlightTransaction() });
    } catch {
      // A diagnostic must never break the subscription it is about.
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('The event store is closed');
  }
}

/** $1..$5 of the batch statements: the stream, then one array per column. */
function arrayParameters(streamId: string, events: readonly NewEvent[]): unknown[] {
  return [
    streamId,
    events.map((event) => event.id),
    events.map((event) => event.type),
    events.map((event) => event.data),
    events.map((event) => event.metadata),
  ];
}

/** An `EventRow` as an array, in `eventColumnsOf` order. */
type EventTuple = [string, string, string, string, string, string, JsonObject, JsonObject, number];

function tupleToRecordedEvent([globalPosition, transactionId, streamId, revision, id, type, data, metadata, recordedAt]: EventTuple): RecordedEvent {
  return {
    id,
    type,
    data,
    metadata,
    streamId,
    revision: Number(revision),
    position: { commit: BigInt(transactionId), prepare: BigInt(globalPosition) },
    recordedAt: new Date(Math.floor(recordedAt)),
  };
}

/** A row of the first-page query carries an event only when the stream had one to give. */
function isEventRow(row: Partial<EventRow>): row is EventRow {
  return typeof row.event_id === 'string';
}

function toRecordedEvent(row: EventRow): RecordedEvent {
  return {
    id: row.event_id,
    type: row.event_type,
    data: row.data,
    metadata: row.metadata,
    streamId: row.stream_id,
    revision: Number(row.revision),
    position: { commit: BigInt(row.transaction_id), prepare: BigInt(row.global_position) },
    recordedAt: new Date(Math.floor(row.recorded_at)),
  };
}

/**
 * SQL conditions for a filter, with parameters numbered from `firstParameter`; `name` tells the
 * statement's text apart (it depends on which filters are set, never on their values) for a
 * prepared statement of its own.
 */
function filterSql(filter: EventFilter | undefined, firstParameter: number): { sql: string; values: string[][]; name: string } {
  const conditions: string[] = [];
  const values: string[][] = [];
  let name = '';
  if (filter?.eventTypes) {
    values.push([...filter.eventTypes]);
    conditions.push(`AND event_type = ANY ($${firstParameter + values.length - 1}::text[])`);
    name += '_by_type';
  }
  if (filter?.streamPrefixes) {
    values.push(filter.streamPrefixes.map((prefix) => `${prefix.replace(/[\\%_]/g, '\\$&')}%`));
    conditions.push(`AND stream_id LIKE ANY ($${firstParameter + values.length - 1}::text[])`);
    name += '_by_stream';
  }
  return { sql: conditions.join(' '), values, name };
}

function appendError(error: unknown, streamId: string, expected: ExpectedRevision): unknown {
  if (!(error instanceof pg.DatabaseError)) return error;
  if (error.code === 'EV001' || error.code === 'EV002') return refusal(streamId, expected, error.code, error.detail ?? null);
  // Only reachable when the stream lock was bypassed, e.g. a caller's REPEATABLE READ snapshot
  // that cannot see the revision a concurrent append took.
  if (error.code === '23505' && error.constraint === 'events_stream_revision') return new ConcurrencyError(streamId, expected, undefined);
  return error;
}

/** An append the store refused, from `try_append_to_stream`'s code and detail (see its migration). */
function refusal(streamId: string, expected: ExpectedRevision, code: string, detail: string | null): Error {
  if (code === 'EV002') return new DuplicateEventError(streamId, (detail ?? '').split(','));
  if (code !== 'EV001') return new Error(`Stream ${streamId}: the append was refused with ${code} ${detail ?? ''}`);
  const actual = detail === 'no_stream' ? 'no_stream' : Number(detail);
  return new ConcurrencyError(streamId, expected, Number.isNaN(actual) ? undefined : actual);
}

/**
 * Sends NOTIFY after appends, outside their transactions (see the migration for why), and at
 * most one per `intervalMs`: the first append after a quiet spell is announced at once, the
 * ones that follow within the interval by one notification at its end. A subscriber needs to
 * learn that something was appended, not how often, and a NOTIFY per append would double the
 * statements the server runs.
 */
class Notifier {
  private inFlight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** An append finished after the last NOTIFY went out. */
  private pending = false;
  private lastSent = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly pool: pg.Pool,
    private readonly channel: string,
    private readonly intervalMs: number,
  ) {}

  notify(): void {
    if (this.inFlight || this.timer) {
      this.pending = true;
      return;
    }
    const wait = this.lastSent + this.intervalMs - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.send();
      }, wait);
      return;
    }
    this.send();
  }

  /** Waits for the NOTIFY on its way; a scheduled one is dropped (subscribers poll anyway). */
  async settled(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = false;
    await this.inFlight;
  }

  private send(): void {
    this.pending = false;
    this.lastSent = Date.now();
    this.inFlight = this.pool
      .query({ name: 'notify_appended', text: "SELECT pg_notify($1, '')", values: [this.channel] })
      .then(
        () => undefined,
        // A lost notification costs latency, not events: subscribers poll as a fallback.
        () => undefined,
      )
      .finally(() => {
        this.inFlight = undefined;
        if (this.pending) this.notify();
      });
  }
}

/**
 * One LISTEN connection per store, shared by its subscriptions: a projector process may run
 * many, and each would otherwise hold a server connection that does nothing but wait. It is a
 * client of its own rather than one borrowed from the pool, so LISTEN state never leaks back
 * into the pool. When it drops, its subscribers are woken to look and listen again; until it is
 * reopened, they poll.
 */
class ChannelListener {
  private client: pg.Client | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private connecting = false;
  /** After a failed attempt, no other before this time: a server that is down is not hammered. */
  private retryAfter = 0;
  private closed = false;
  private readonly wakers = new Set<() => void>();
  private readonly dropped = new WeakSet<pg.Client>();

  constructor(
    private readonly createClient: () => pg.Client,
    private readonly channel: string,
    private readonly retryIntervalMs: number,
    private readonly heartbeatMs: number,
  ) {}

  /** Calls `wake` on every notification; returns the function that stops it. */
  add(wake: () => void): () => void {
    this.wakers.add(wake);
    this.ensureListening();
    return () => {
      this.wakers.delete(wake);
      if (this.wakers.size === 0) this.disconnect();
    };
  }

  ensureListening(): void {
    if (this.client || this.connecting || this.closed || this.wakers.size === 0) return;
    if (Date.now() < this.retryAfter) return;
    this.connecting = true;
    void this.connect().finally(() => {
      this.connecting = false;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wakeAll();
    this.disconnect();
  }

  private async connect(): Promise<void> {
    const client = this.createClient();
    client.on('notification', () => this.wakeAll());
    client.on('error', () => this.drop(client));
    client.on('end', () => this.drop(client));
    try {
      await client.connect();
      // It only listens, but is a session of ours like the pool's (see `search-path.ts`).
      await pinSearchPath(client);
      await client.query(`LISTEN ${this.channel}`);
    } catch {
      this.retryAfter = Date.now() + this.retryIntervalMs;
      this.drop(client);
      return;
    }
    if (this.closed || this.wakers.size === 0) {
      this.drop(client);
      return;
    }
    this.client = client;
    this.beat(client);
    // Appends made while nobody listened sent notifications nobody heard.
    this.wakeAll();
  }

  /**
   * A `SELECT 1` every `heartbeatMs`, and the connection dropped when one goes unanswered (the
   * client's `query_timeout`): a connection cut off silently (a NAT or load balancer that forgot
   * it, a failover) raises no error and no end, and its subscribers would wait out the poll for
   * every event for the life of the process. TCP keepalive notices too, but only after hours.
   */
  private beat(client: pg.Client): void {
    this.heartbeat = setTimeout(() => {
      client.query('SELECT 1').then(
        () => {
          if (this.client === client) this.beat(client);
        },
        () => this.drop(client),
      );
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  private disconnect(): void {
    if (this.client) this.drop(this.client);
  }

  private drop(client: pg.Client): void {
    if (this.client === client) {
      this.client = undefined;
      clearTimeout(this.heartbeat);
      // Its subscribers look now for what was appended since it last heard, and listen again
      // (see `ensureListening`), rather than at their next poll.
      if (!this.closed) this.wakeAll();
    }
    if (this.dropped.has(client)) return;
    this.dropped.add(client);
    client.removeAllListeners('notification');
    // Errors after the end are of no interest, but must not go unhandled.
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
  }

  private wakeAll(): void {
    for (const wake of [...this.wakers]) wake();
  }
}
