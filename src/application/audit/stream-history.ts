import { aggregates } from '../aggregates/aggregates.js';
import type { Aggregate } from '../command-handling/aggregate.js';
import type { DomainEvent } from '../command-handling/event-codec.js';
import { isSystemStream, type EventStore, type JsonObject, type ReadStreamOptions, type ReadStreamResult, type RecordedEvent } from '../ports/event-store.js';
import { occurredAt } from '../metadata.js';
import { formatPosition } from '../ports/position.js';
import { storedHash, storedPrevHash } from './hash-chain.js';
import { unreadableFieldsOf } from './unreadable-events.js';

/** What the audit side reads: never appends. */
export type EventReader = Pick<EventStore, 'readStream' | 'readAll'>;

/** One event as the audit API shows it (API.md, "audit event"). */
export type AuditEvent = {
  readonly streamId: string;
  readonly revision: number;
  /** The event's id, which chain version 2 hashes (`hash-chain.ts`). */
  readonly eventId: string;
  /** Global position, as `Event-Position` gives it. */
  readonly position: string;
  readonly type: string;
  readonly schemaVersion: number;
  /** When the service decided it (metadata), else when the store recorded it. */
  readonly occurredAt: string;
  readonly recordedAt: string;
  readonly data: JsonObject;
  /** Actor, roles, request id, correlation, causation, IP, user agent, and the chain fields. */
  readonly metadata: JsonObject;
  /** `null` for an event appended outside the command loop. */
  readonly hash: string | null;
  readonly prevHash: string | null;
  /** Only on an event that could not be revealed: its fields that read `[unreadable]`. */
  readonly unreadableFields?: string[];
};

export function toAuditEvent(event: RecordedEvent): AuditEvent {
  const schemaVersion = event.metadata.schemaVersion;
  const unreadable = unreadableFieldsOf(event);
  return {
    streamId: event.streamId,
    revision: event.revision,
    eventId: event.id,
    position: formatPosition(event.position),
    type: event.type,
    schemaVersion: typeof schemaVersion === 'number' ? schemaVersion : 1,
    occurredAt: occurredAt(event).toISOString(),
    recordedAt: event.recordedAt.toISOString(),
    data: event.data,
    metadata: event.metadata,
    hash: storedHash(event) ?? null,
    prevHash: storedPrevHash(event) ?? null,
    ...(unreadable && { unreadableFields: [...unreadable] }),
  };
}

/** An aggregate with its types erased: the audit side folds whichever one a stream id names. */
export type AnyAggregate = Aggregate<unknown, DomainEvent, unknown>;

const byCategory: ReadonlyMap<string, AnyAggregate> = new Map(Object.values(aggregates).map((aggregate): [string, AnyAggregate] => [aggregate.category, aggregate]));

/** The aggregate a stream id (`<category>-<id>`) belongs to, if its category is one of ours. */
export function aggregateOf(streamId: string): AnyAggregate | undefined {
  const dash = streamId.indexOf('-');
  return dash > 0 ? byCategory.get(streamId.slice(0, dash)) : undefined;
}

/** One stream as the audit side reads it: an event store's own (`$`) stream reads as no stream at all. */
export async function readAuditedStream(reader: EventReader, streamId: string, options?: ReadStreamOptions): Promise<ReadStreamResult> {
  return isSystemStream(streamId) ? { status: 'no_stream' } : reader.readStream(streamId, options);
}

/** One page of a stream's history, in revision order from `after + 1`; `undefined`: no such stream. */
export async function historyPage(
  reader: EventReader,
  streamId: string,
  page: { readonly limit: number; readonly after?: number | undefined },
): Promise<{ items: AuditEvent[]; next: number | null } | undefined> {
  const read = await readAuditedStream(reader, streamId, { from: (page.after ?? -1) + 1, maxCount: page.limit + 1 });
  if (read.status === 'no_stream') return undefined;
  const events: AuditEvent[] = [];
  for await (const event of read.events) events.push(toAuditEvent(event));
  const items = events.slice(0, page.limit);
  const last = items.at(-1);
  return { items, next: events.length > page.limit && last ? last.revision : null };
}

/** Where one event sits in the log: its stream and revision. */
export type EventRef = { readonly streamId: string; readonly revision: number };

/**
 * The events at `refs` (a page of an index, say), in the order given, each read from its stream
 * and shown as `historyPage` shows it. One read per run of consecutive revisions of a stream, so
 * never more reads than refs and no event outside them; the reads are issued together (the
 * PostgreSQL store batches the first page of concurrent stream reads into one query).
 */
export async function auditEventsAt(reader: EventReader, refs: readonly EventRef[]): Promise<AuditEvent[]> {
  const runs = revisionRuns(refs);
  const read = await Promise.all(
    runs.map(async ({ streamId, from, count }) => {
      const stream = await reader.readStream(streamId, { from, maxCount: count });
      const events: AuditEvent[] = [];
      if (stream.status === 'found') for await (const event of stream.events) events.push(toAuditEvent(event));
      return events;
    }),
  );
  const byRef = new Map(read.flat().map((event) => [refKey(event), event]));
  return refs.map((ref) => {
    const event = byRef.get(refKey(ref));
    // The index is built from the log, which is append-only: a ref without its event is corruption.
    if (!event) throw new Error(`Event ${ref.revision} of ${ref.streamId} is referenced but not in the event store`);
    return event;
  });
}

const refKey = (ref: EventRef): string => `${ref.revision}@${ref.streamId}`;

/** `refs` as runs of consecutive revisions of one stream, each run once. */
function revisionRuns(refs: readonly EventRef[]): { streamId: string; from: number; count: number }[] {
  const revisionsByStream = new Map<string, Set<number>>();
  for (const { streamId, revision } of refs) revisionsByStream.set(streamId, (revisionsByStream.get(streamId) ?? new Set()).add(revision));
  const runs: { streamId: string; from: number; count: number }[] = [];
  for (const [streamId, revisions] of revisionsByStream) {
    for (const revision of [...revisions].sort((a, b) => a - b)) {
      const last = runs.at(-1);
      if (last?.streamId === streamId && last.from + last.count === revision) last.count++;
      else runs.push({ streamId, from: revision, count: 1 });
    }
  }
  return runs;
}

/** Which past state: after the event of revision `version`, or as it stood at the instant `at`. */
export type StateTarget = { readonly version: number } | { readonly at: Date } | { readonly latest: true };

export type PastState = {
  readonly streamId: string;
  readonly category: string;
  /** Revision of the last event folded; −1: the aggregate did not exist yet. */
  readonly version: number;
  /** Position and time of that event, `null` when none. */
  readonly position: string | null;
  readonly occurredAt: string | null;
  readonly state: unknown;
  /** Revisions folded whose personal fields read `[unreadable]` (in the state too, where it keeps them). */
  readonly unreadableRevisions: number[];
};

export type PastStateAnswer =
  | { readonly status: 'found'; readonly past: PastState }
  | { readonly status: 'unknown-category' }
  | { readonly status: 'no-stream' }
  /** The stream never reached the requested version. */
  | { readonly status: 'no-such-version'; readonly lastVersion: number }
  /** An event on the way could not be revealed, and does not decode with `[unreadable]` in place. */
  | { readonly status: 'unreadable-event'; readonly revision: number };

/**
 * The aggregate's state as it was: its stream folded with the command side's own codec
 * (upcasters included) and `evolve`, up to the target. A prefix of the stream, always: an event
 * whose time is past `at` ends the fold even if a later one claims an earlier time.
 */
export async function stateAt(reader: EventReader, streamId: string, target: StateTarget): Promise<PastStateAnswer> {
  const aggregate = aggregateOf(streamId);
  if (!aggregate) return { status: 'unknown-category' };
  const read = await readAuditedStream(reader, streamId, 'version' in target ? { maxCount: target.version + 1 } : {});
  if (read.status === 'no_stream') return { status: 'no-stream' };
  let state = aggregate.decider.initialState;
  let last: RecordedEvent | undefined;
  const unreadableRevisions: number[] = [];
  for await (const event of read.events) {
    if ('at' in target && occurredAt(event) > target.at) break;
    const decoded = decodedForFold(aggregate, event);
    if (!decoded) return { status: 'unreadable-event', revision: event.revision };
    state = aggregate.decider.evolve(state, decoded);
    if (unreadableFieldsOf(event)) unreadableRevisions.push(event.revision);
    last = event;
  }
  const version = last?.revision ?? -1;
  if ('version' in target && version < target.version) return { status: 'no-such-version', lastVersion: version };
  return {
    status: 'found',
    past: {
      streamId,
      category: aggregate.category,
      version,
      position: last ? formatPosition(last.position) : null,
      occurredAt: last ? occurredAt(last).toISOString() : null,
      state,
      unreadableRevisions,
    },
  };
}

/**
 * The event as its aggregate's codec reads it; `undefined` for an unreadable event that does not
 * decode with its personal fields reading `[unreadable]`: a schema that asks more of such a field
 * than text (a format, a length), or damage beyond those fields. Folding past it would be a guess.
 */
function decodedForFold(aggregate: AnyAggregate, event: RecordedEvent): DomainEvent | undefined {
  try {
    return aggregate.codec.decode(event);
  } catch (error) {
    // A readable event that does not decode is a fault of the log or of the codec: a 500 to look into.
    if (!unreadableFieldsOf(event)) throw error;
    return undefined;
  }
}
