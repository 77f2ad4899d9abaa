// Pure translations between the EventStore port and @eventstore/db-client, kept apart from the
// adapter so they can be unit-tested without an EventStoreDB server.
import {
  ANY,
  NO_STREAM,
  START as ESDB_START,
  STREAM_EXISTS,
  StreamDeletedError as EsdbStreamDeletedError,
  eventTypeFilter,
  excludeSystemEvents,
  jsonEvent,
  streamNameFilter,
  type AppendExpectedRevision,
  type CurrentRevision,
  type EventData,
  type Filter,
  type ReadPosition,
  type RecordedEvent as EsdbRecordedEvent,
} from '@eventstore/db-client';
import {
  ConcurrencyError,
  isSystemStream,
  StreamDeletedError,
  matchesFilter,
  type EventFilter,
  type ExpectedRevision,
  type JsonObject,
  type NewEvent,
  type RecordedEvent,
} from '../../application/ports/event-store.js';
import { comparePositions, START, type Position } from '../../application/ports/position.js';

export function toEsdbExpectedRevision(expected: ExpectedRevision): AppendExpectedRevision {
  switch (expected) {
    case 'any':
      return ANY;
    case 'no_stream':
      return NO_STREAM;
    case 'stream_exists':
      return STREAM_EXISTS;
    default:
      return toEsdbRevision(expected);
  }
}

export function toEsdbRevision(revision: number): bigint {
  if (!Number.isSafeInteger(revision) || revision < 0) throw new RangeError(`Not a stream revision: ${revision}`);
  return BigInt(revision);
}

/** Revisions are bigints on the wire; a number holds any stream we could ever write. */
export function fromEsdbRevision(revision: bigint): number {
  if (revision < 0n || revision > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`Stream revision ${revision} does not fit a number`);
  }
  return Number(revision);
}

/** The `actual` of a ConcurrencyError; the server leaves it out in some failure modes. */
export function fromEsdbCurrentRevision(current: CurrentRevision | undefined): number | 'no_stream' | undefined {
  if (current === undefined) return undefined;
  if (current === NO_STREAM) return 'no_stream';
  // Older servers encode "no stream" as -1 rather than leaving the revision out.
  return current < 0n ? 'no_stream' : fromEsdbRevision(current);
}

export function toConcurrencyError(
  streamId: string,
  expected: ExpectedRevision,
  actual: CurrentRevision | undefined,
): ConcurrencyError {
  return new ConcurrencyError(streamId, expected, fromEsdbCurrentRevision(actual));
}

/**
 * What a failed read of, or append to, `streamId` throws in the port's terms: a stream deleted for
 * good (tombstoned) is refused with `StreamDeletedError`; anything else passes as it is. A stream
 * that never existed is no error at all: the adapter answers `no_stream` for it.
 */
export function toStreamError(streamId: string, error: unknown): unknown {
  return error instanceof EsdbStreamDeletedError ? new StreamDeletedError(streamId) : error;
}

export function fromEsdbPosition(position: { readonly commit: bigint; readonly prepare: bigint }): Position {
  return { commit: position.commit, prepare: position.prepare };
}

/** Where to start reading `$all` for the events after `after`. */
export function toReadPosition(after: Position | undefined): ReadPosition {
  if (!after || comparePositions(after, START) === 0) return ESDB_START;
  return fromEsdbPosition(after);
}

/** `fromPosition` is inclusive in EventStoreDB and `after` is exclusive in the port. */
export function isAfter(position: Position, after: Position | undefined): boolean {
  return after === undefined || comparePositions(position, after) > 0;
}

export function toEsdbEvent(event: NewEvent): EventData {
  return jsonEvent({ id: event.id, type: event.type, data: event.data, metadata: event.metadata });
}

export function fromEsdbEvent(event: EsdbRecordedEvent): RecordedEvent {
  if (!event.isJson) throw new Error(`Event ${event.id} in ${event.streamId} is not JSON: this store never writes it`);
  if (!isRealPosition(event.position)) {
    throw new Error(`EventStoreDB gave no position for event ${event.id}: it needs server version 22.6 or later`);
  }
  return {
    id: event.id,
    type: event.type,
    data: toJsonObject(event.data, `data of event ${event.id}`),
    metadata: event.metadata === undefined ? {} : toJsonObject(event.metadata, `metadata of event ${event.id}`),
    streamId: event.streamId,
    revision: fromEsdbRevision(event.revision),
    position: fromEsdbPosition(event.position),
    recordedAt: event.created,
  };
}

const unsetPosition = 2n ** 64n - 1n;

/**
 * The client never leaves a position out: servers before 22.6 send -1 on stream reads, which
 * arrives as 2^64-1, and a field never set arrives as 0. No event of ours is at 0/0: that is
 * START, before every event, and a log begins with the server's own records.
 */
function isRealPosition(position: Position | undefined): position is Position {
  if (!position || position.commit === unsetPosition || position.prepare === unsetPosition) return false;
  return comparePositions(position, START) !== 0;
}

/** The client has already parsed the JSON; only the top-level shape is left to check. */
function toJsonObject(value: unknown, what: string): JsonObject {
  if (!isJsonObject(value)) throw new Error(`The ${what} is not a JSON object`);
  return value;
}

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** System events live in `$`-prefixed streams or have `$`-prefixed types (`$metadata`, `$>`, …). */
export function isSystemEvent(event: { readonly type: string; readonly streamId: string }): boolean {
  return event.type.startsWith('$') || isSystemStream(event.streamId);
}

/**
 * The whole filter, evaluated on the client. The server-side filter (`toServerFilter`) carries
 * only one expression, so this is what makes the result exact: system events out, and both
 * lists applied when both are given.
 */
export function matchesClientSide(event: RecordedEvent, filter: EventFilter | undefined): boolean {
  return !isSystemEvent(event) && matchesFilter(event, filter);
}

/** A .NET regex that matches no string: an empty list in our filter matches nothing. */
const matchesNothing = '(?!)';

/**
 * The server-side part of a `$all` filter. EventStoreDB takes one expression, on either event
 * types or stream names, so it gets the more selective list (exact event types) and
 * `matchesClientSide` applies the rest on the client.
 */
export function toServerFilter(filter: EventFilter | undefined): Filter {
  if (filter?.eventTypes) {
    const types = filter.eventTypes.filter((type) => !type.startsWith('$')).map(escapeRegex);
    return eventTypeFilter({ regex: types.length > 0 ? `^(?:${types.join('|')})$` : matchesNothing });
  }
  if (filter?.streamPrefixes) {
    const prefixes = filter.streamPrefixes.filter((prefix) => prefix !== '' && !prefix.startsWith('$'));
    // An empty prefix matches every stream, system ones too: leave those out on the server.
    if (filter.streamPrefixes.includes('')) return excludeSystemEvents();
    return prefixes.length > 0 ? streamNameFilter({ prefixes }) : streamNameFilter({ regex: matchesNothing });
  }
  return excludeSystemEvents();
}

export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
