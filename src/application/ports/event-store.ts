import { DomainError } from '../../domain/shared/domain-error.js';
import type { Position } from './position.js';

export type { Position } from './position.js';

/** What JSON can carry: event data and metadata are stored as JSON by every adapter. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** An event about to be appended. */
export type NewEvent = {
  /** Caller-chosen UUID. Appending an id that is already in the stream is a no-op (idempotent retry). */
  readonly id: string;
  /** Past-tense name, e.g. `BookingRequested`. */
  readonly type: string;
  readonly data: JsonObject;
  /** Who, why and when; see `EventMetadata` in `src/application/metadata.ts`. */
  readonly metadata: JsonObject;
};

/** An event as stored. */
export type RecordedEvent = NewEvent & {
  readonly streamId: string;
  /** 0 for a stream's first event, then 1, 2, … without gaps. */
  readonly revision: number;
  readonly position: Position;
  /** When the store recorded it (the store's clock, not the caller's). */
  readonly recordedAt: Date;
};

/**
 * The revision an append expects the stream to be at:
 * a number — exactly that revision (the revision of the stream's last event);
 * `no_stream` — the stream has no events yet; `stream_exists` — it has at least one;
 * `any` — no check.
 */
export type ExpectedRevision = number | 'no_stream' | 'stream_exists' | 'any';

export type AppendResult = {
  /** Revision of the last event appended (or, on an idempotent retry, originally appended). */
  readonly revision: number;
  /** Global position of that event. */
  readonly position: Position;
  /**
   * Whether this append wrote the events. `false` when their ids were in the stream already: an
   * earlier append (a retry's first try, or a duplicate of the command running at the same
   * moment) wrote them, perhaps with other data, and the revision is not proof of anything: a
   * duplicate that read the stream where the original did gets the very revision it expected.
   * (EventStoreDB can only compare what is stored: an exact copy racing the original, data and
   * metadata alike, may be answered `true`, which is harmless, for the stored events are its own.)
   */
  readonly written: boolean;
};

export type ReadStreamOptions = {
  /** First revision to read (inclusive); default: the start, or the end when reading backwards. */
  readonly from?: number;
  readonly direction?: 'forwards' | 'backwards';
  readonly maxCount?: number;
};

/** A missing stream is an answer, not an exception. */
export type ReadStreamResult =
  | { readonly status: 'no_stream' }
  | { readonly status: 'found'; readonly events: AsyncIterable<RecordedEvent> };

/** Narrows a read of `$all` on the server side (both filters must match when both are given). */
export type EventFilter = {
  readonly eventTypes?: readonly string[];
  readonly streamPrefixes?: readonly string[];
};

/**
 * What every store refuses before it looks at anything (RangeError): a system stream (on
 * EventStoreDB, a write there changes the server itself, e.g. a stream's ACL), an empty batch, and
 * an expected revision that is no revision (negative, fractional), which a store's own encoding of
 * the named ones could otherwise read as one of them, or as no check at all.
 */
export function checkAppend(streamId: string, events: readonly NewEvent[], expected: ExpectedRevision): void {
  if (isSystemStream(streamId)) throw new RangeError(`Stream ${streamId}: a system stream, not ours to write`);
  if (events.length === 0) throw new RangeError(`Stream ${streamId}: nothing to append`);
  if (typeof expected === 'number' && (!Number.isSafeInteger(expected) || expected < 0)) {
    throw new RangeError(`Stream ${streamId}: ${expected} is not a revision to expect`);
  }
}

/**
 * Stream ids beginning with `$` name the store's own streams (EventStoreDB's system streams:
 * `$user-admin` holds a password hash and salt), never an aggregate's: nothing here reads them.
 */
export function isSystemStream(streamId: string): boolean {
  return streamId.startsWith('$');
}

/** What the filter means, for stores (and tests) that apply it themselves: both lists must match when both are given; an empty list matches nothing, as it says. */
export function matchesFilter(event: Pick<RecordedEvent, 'type' | 'streamId'>, filter: EventFilter | undefined): boolean {
  if (filter?.eventTypes && !filter.eventTypes.includes(event.type)) return false;
  if (filter?.streamPrefixes && !filter.streamPrefixes.some((prefix) => event.streamId.startsWith(prefix))) return false;
  return true;
}

export type ReadAllOptions = {
  /** Read the events after this position (exclusive); default: from the first event. */
  readonly after?: Position;
  readonly maxCount?: number;
  readonly filter?: EventFilter;
};

export type SubscribeOptions = {
  /** Deliver the events after this position (exclusive), e.g. a stored checkpoint. */
  readonly after?: Position;
  readonly filter?: EventFilter;
  /** Aborting ends the iteration promptly and releases the subscription's resources. */
  readonly signal?: AbortSignal;
};

/** The event store: the only source of truth of the write side. */
export interface EventStore {
  /**
   * Appends `events` to `streamId` atomically if the stream is at `expectedRevision`, else throws
   * `ConcurrencyError`. If every event id is already in the stream, nothing is written and the
   * original result is returned (`written: false`); if only some are, the whole batch is
   * rejected with `DuplicateEventError`.
   */
  appendToStream(
    streamId: string,
    events: readonly NewEvent[],
    options?: { readonly expectedRevision?: ExpectedRevision },
  ): Promise<AppendResult>;

  /** Reads one stream in revision order (or reverse). */
  readStream(streamId: string, options?: ReadStreamOptions): Promise<ReadStreamResult>;

  /**
   * Reads every stream in global order. Positions only ever grow along the iteration, and an
   * event never appears behind an event already returned to any reader.
   */
  readAll(options?: ReadAllOptions): AsyncIterable<RecordedEvent>;

  /**
   * Catch-up from `after`, then live, as one iteration in global order: no event skipped, none
   * delivered twice. Ends without error when `signal` aborts.
   */
  subscribeToAll(options?: SubscribeOptions): AsyncIterable<RecordedEvent>;

  /**
   * Waits, `timeoutMs` at most, until `readAll` shows every event committed before the call;
   * false if it still does not by then. Only a store whose global order holds committed events
   * back needs it (PostgreSQL's, behind transactions still open); a store without it shows each
   * commit to `readAll` at once.
   */
  committedVisible?(timeoutMs: number): Promise<boolean>;

  /**
   * The position of the last event `readAll` shows now (`START` while it shows none): a cut that
   * stays where it is, since every event `readAll` does not show yet will read after it. A long
   * read that stops there (the audit export) holds exactly the log as it stood when it began.
   */
  headPosition(): Promise<Position>;

  /** Releases connections. The store is unusable afterwards. */
  close(): Promise<void>;
}

/** The stream was not at the revision the append expected. */
export class ConcurrencyError extends Error {
  override readonly name = 'ConcurrencyError';
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedRevision,
    /** The stream's revision found instead, or `no_stream`; `undefined` when the store did not say. */
    readonly actual: number | 'no_stream' | undefined,
  ) {
    super(`Stream ${streamId}: expected revision ${String(expected)}, found ${String(actual ?? 'unknown')}`);
  }
}

/** A batch repeated some event ids already in the stream but not all: not a retry, not new. */
export class DuplicateEventError extends Error {
  override readonly name = 'DuplicateEventError';
  constructor(
    readonly streamId: string,
    readonly eventIds: readonly string[],
  ) {
    super(`Stream ${streamId}: events ${eventIds.join(', ')} were already appended in another batch`);
  }
}

/**
 * The stream was deleted for good (an EventStoreDB tombstone): it can be neither read nor written
 * again, and is never taken for a stream that does not exist, which an append would recreate.
 * A refusal like a rule's (409 at the HTTP edge, nothing appended, no retry helps), since the
 * aggregate it held is gone for as long as the store lasts.
 */
export class StreamDeletedError extends DomainError<'stream-deleted'> {
  constructor(readonly streamId: string) {
    super('stream-deleted', `Stream ${streamId} was deleted for good`);
  }
}
