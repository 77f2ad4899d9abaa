import { isDeepStrictEqual } from 'node:util';
import {
  BACKWARDS,
  END,
  EventStoreDBClient,
  FORWARDS,
  NO_STREAM,
  START as ESDB_START,
  StreamNotFoundError,
  WrongExpectedVersionError,
  type CurrentRevision,
  type ResolvedEvent,
} from '@eventstore/db-client';
import {
  checkAppend,
  DuplicateEventError,
  isSystemStream,
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type ReadStreamResult,
  type RecordedEvent,
  type SubscribeOptions,
} from '../../application/ports/event-store.js';
import { START, type Position } from '../../application/ports/position.js';
import {
  fromEsdbEvent,
  fromEsdbRevision,
  isAfter,
  isSystemEvent,
  matchesClientSide,
  toConcurrencyError,
  toEsdbEvent,
  toEsdbExpectedRevision,
  toEsdbRevision,
  toReadPosition,
  toServerFilter,
  toStreamError,
} from './esdb-mapping.js';

export type EsdbEventStoreOptions = {
  /**
   * How many of a stream's latest events an append searches for the batch's ids (see
   * `appendToStream`). Our aggregate streams are short; this bounds the cost on long ones.
   */
  readonly duplicateCheckWindow?: number;
};

/**
 * Appends and stream reads go to the cluster's leader, whatever node the connection string
 * prefers: a follower may not have an acknowledged append yet, and a command reads the stream it
 * appends to (the look for duplicates, the appended event's position, the state to decide on
 * after a conflict), so a read there could miss our own write. A node that is no longer leader
 * (after a failover) refuses such a call with NotLeaderError, and the client reconnects to the
 * leader it names for the next call. Reads of `$all` (projections) may be served by any node.
 */
const onLeader = { requiresLeader: true } as const;

/**
 * The EventStore port on EventStoreDB (gRPC, server 22.6 or later: older servers do not report
 * positions on stream reads). Positions are EventStoreDB's own `{ commit, prepare }` log
 * positions; system events (`$`-prefixed types or streams) never reach our readers. A stream
 * deleted for good (tombstoned) is refused with `StreamDeletedError`, on read and on append.
 */
export class EsdbEventStore implements EventStore {
  private readonly duplicateCheckWindow: number;

  /** Does not connect: the client connects on its first call. */
  static fromConnectionString(connectionString: string, options?: EsdbEventStoreOptions): EsdbEventStore {
    return new EsdbEventStore(EventStoreDBClient.connectionString(connectionString), options);
  }

  constructor(
    private readonly client: EventStoreDBClient,
    options: EsdbEventStoreOptions = {},
  ) {
    this.duplicateCheckWindow = options.duplicateCheckWindow ?? 256;
  }

  /**
   * EventStoreDB's own idempotency only looks at where the batch's first event id would be: a
   * retry with the revision it originally expected is a no-op, but a batch whose ids are partly
   * (or, after a fresh expected revision, wholly) in the stream already would be written again.
   * The port promises more, so an append first reads the stream's latest events
   * (`duplicateCheckWindow` of them) for the batch's ids: all there is a retry and returns the
   * original result, some there is a `DuplicateEventError`. That costs one read per append; a
   * retry racing that read is still caught by the server's own check. Ids older than the window
   * are not checked.
   */
  async appendToStream(
    streamId: string,
    events: readonly NewEvent[],
    options: { readonly expectedRevision?: ExpectedRevision } = {},
  ): Promise<AppendResult> {
    const expected = options.expectedRevision ?? 'any';
    checkAppend(streamId, events, expected);
    const earlier = await this.findEarlierAppend(streamId, events);
    if (earlier) return earlier;
    let result: Awaited<ReturnType<EventStoreDBClient['appendToStream']>>;
    try {
      result = await this.client.appendToStream(streamId, events.map(toEsdbEvent), {
        ...onLeader,
        expectedRevision: toEsdbExpectedRevision(expected),
      });
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) throw toConcurrencyError(streamId, expected, error.actualVersion);
      throw toStreamError(streamId, error);
    }
    // A client made with `throwOnAppendFailure=false` (a connection string may say so) answers
    // a wrong expected revision with `success: false`, not a throw. Its `nextExpectedRevision`
    // is then 1 for any stream that exists on servers from 22.6 (the batch append path reports
    // only whether it has a revision): the stream's revision takes a read.
    if (!result.success) throw toConcurrencyError(streamId, expected, await this.currentRevision(streamId));
    const revision = fromEsdbRevision(result.nextExpectedRevision);
    // Written: from here on a failure (the stream tombstoned before the read back) is no refusal,
    // which would tell the caller nothing was appended while projectors apply the events.
    const stored = await this.eventAt(streamId, revision);
    // The server answers a batch whose ids it wrote just before (a duplicate that raced the
    // look above) as if it had written it: only what is stored tells whose events these are.
    const last = events[events.length - 1];
    const written = last !== undefined && stored.id === last.id && isDeepStrictEqual(stored.data, last.data) && isDeepStrictEqual(stored.metadata, last.metadata);
    return { revision, position: stored.position, written };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    // Not ours, and the client's credentials may reach them: as if they were not there.
    if (isSystemStream(streamId)) return { status: 'no_stream' };
    const { from, direction = 'forwards', maxCount } = options;
    // Read whole and hand back an array: a caller that only looks at `status` must not leave a
    // gRPC call open, and aggregate streams are small.
    const read = this.client.readStream(streamId, {
      ...onLeader,
      direction: direction === 'forwards' ? FORWARDS : BACKWARDS,
      fromRevision: from === undefined ? (direction === 'forwards' ? ESDB_START : END) : toEsdbRevision(from),
      // A count of 0 would not tell us whether the stream exists.
      ...(maxCount === undefined ? {} : { maxCount: Math.max(1, maxCount) }),
    });
    const events: RecordedEvent[] = [];
    try {
      for await (const resolved of read) {
        if (resolved.event) events.push(fromEsdbEvent(resolved.event));
      }
    } catch (error) {
      if (error instanceof StreamNotFoundError) return { status: 'no_stream' };
      throw toStreamError(streamId, error);
    }
    return { status: 'found', events: iterate(events.slice(0, Math.max(0, maxCount ?? events.length))) };
  }

  readAll(options: ReadAllOptions = {}): AsyncIterable<RecordedEvent> {
    return { [Symbol.asyncIterator]: () => this.readAllAfter(options) };
  }

  subscribeToAll(options: SubscribeOptions = {}): AsyncIterable<RecordedEvent> {
    return { [Symbol.asyncIterator]: () => this.subscribe(options) };
  }

  /** The last event of `$all` that is not the server's own, read backwards from the end. */
  async headPosition(): Promise<Position> {
    const read = this.client.readAll({ fromPosition: END, direction: BACKWARDS });
    try {
      for await (const resolved of read) {
        const raw = resolved.event;
        if (raw && !isSystemEvent(raw)) return fromEsdbEvent(raw).position;
      }
    } finally {
      await read.cancel().catch(() => undefined);
    }
    return START;
  }

  async close(): Promise<void> {
    await this.client.dispose();
  }

  private async findEarlierAppend(streamId: string, events: readonly NewEvent[]): Promise<AppendResult | undefined> {
    const ids = events.map((event) => event.id);
    const repeatedInBatch = ids.filter((id, index) => ids.indexOf(id) !== index);
    const batch = new Set(ids);
    const found = new Map<string, RecordedEvent>();
    for (const event of await this.readTail(streamId)) {
      if (batch.has(event.id) && !found.has(event.id)) found.set(event.id, fromEsdbEvent(event));
    }
    if (found.size === ids.length && repeatedInBatch.length === 0) {
      const original = [...found.values()].reduce((a, b) => (b.revision > a.revision ? b : a));
      return { revision: original.revision, position: original.position, written: false };
    }
    if (found.size > 0 || repeatedInBatch.length > 0) {
      throw new DuplicateEventError(streamId, [...new Set([...found.keys(), ...repeatedInBatch])]);
    }
    return undefined;
  }

  /**
   * For a refused append's ConcurrencyError. The refusal is the answer and this only detail, so a
   * read that fails leaves it unknown rather than replacing the ConcurrencyError.
   */
  private async currentRevision(streamId: string): Promise<CurrentRevision | undefined> {
    try {
      const [last] = await this.readTail(streamId, 1);
      return last?.revision ?? NO_STREAM;
    } catch {
      return undefined;
    }
  }

  private async readTail(streamId: string, maxCount = this.duplicateCheckWindow): Promise<NonNullable<ResolvedEvent['event']>[]> {
    const read = this.client.readStream(streamId, { ...onLeader, direction: BACKWARDS, fromRevision: END, maxCount });
    const tail: NonNullable<ResolvedEvent['event']>[] = [];
    try {
      for await (const resolved of read) if (resolved.event) tail.push(resolved.event);
    } catch (error) {
      if (error instanceof StreamNotFoundError) return [];
      throw toStreamError(streamId, error);
    }
    return tail;
  }

  /**
   * The event at `revision`, for its position: the append's own answer is not used, for a batch it
   * is the transaction's, which sorts before the last event's, and a read-your-writes wait on it
   * would stop one event early; on an idempotent retry the server gives none at all.
   */
  private async eventAt(streamId: string, revision: number): Promise<RecordedEvent> {
    const read = this.client.readStream(streamId, { ...onLeader, fromRevision: toEsdbRevision(revision), maxCount: 1 });
    // A stream deleted since the append fails this read: the append went through, its outcome unknown to the caller.
    for await (const resolved of read) {
      if (resolved.event) return fromEsdbEvent(resolved.event);
    }
    throw new Error(`Stream ${streamId}: the event at revision ${revision} just appended could not be read`);
  }

  private async *readAllAfter(options: ReadAllOptions): AsyncGenerator<RecordedEvent> {
    const { after, maxCount = Number.POSITIVE_INFINITY, filter } = options;
    if (maxCount <= 0) return;
    // Version 6 of the client sends no filter with a read of `$all` (only subscriptions carry
    // one), so the read is filtered here, with the predicate the subscription's server-side
    // filter approximates. System events are dropped before mapping: many are not JSON.
    const read = this.client.readAll({ fromPosition: toReadPosition(after), direction: FORWARDS });
    let count = 0;
    try {
      for await (const resolved of read) {
        const raw = resolved.event;
        if (!raw || isSystemEvent(raw) || !isAfter(raw.position, after)) continue;
        const event = fromEsdbEvent(raw);
        if (!matchesClientSide(event, filter)) continue;
        yield event;
        count += 1;
        if (count >= maxCount) return;
      }
    } finally {
      // Stops the server streaming the rest of `$all` when the caller stops early.
      await read.cancel().catch(() => undefined);
    }
  }

  private async *subscribe(options: SubscribeOptions): AsyncGenerator<RecordedEvent> {
    const { after, filter, signal } = options;
    if (signal?.aborted) return;
    const subscription = this.client.subscribeToAll({
      fromPosition: toReadPosition(after),
      filter: toServerFilter(filter),
    });
    // The abort ends the client's stream, which ends the loop below: a read raced against one
    // abort promise for the whole subscription would leave every event delivered hanging on it.
    const stop = () => subscription.destroy();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      for await (const resolved of subscription) {
        const raw = resolved.event;
        if (!raw || isSystemEvent(raw) || !isAfter(raw.position, after)) continue;
        const event = fromEsdbEvent(raw);
        if (matchesClientSide(event, filter)) yield event;
      }
    } catch (error) {
      // A stream destroyed under its reader fails it with a premature close.
      if (signal?.aborted) return;
      throw error;
    } finally {
      signal?.removeEventListener('abort', stop);
      subscription.destroy();
      // Cancels the gRPC call, but only once the call exists: with `esdb+discover://` that waits
      // for discovery, for minutes when no node answers, and an abort must end the iteration now.
      // Cancelling a call that never got connected fails too; either way it is gone.
      subscription.unsubscribe().catch(() => undefined);
    }
    // The server ends the call on its own account too (shutting down, a leader change), with an
    // OK status: the port's subscription ends only on its signal, and a caller taking this end for
    // one would stop following for good without a word.
    if (!signal?.aborted) throw new Error('EventStoreDB ended the subscription to $all unasked');
  }
}

function iterate<T>(items: readonly T[]): AsyncIterable<T> {
  return {
    async *[Symbol.asyncIterator]() {
      yield* items;
    },
  };
}
