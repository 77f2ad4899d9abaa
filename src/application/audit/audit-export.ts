import type { EventStore, RecordedEvent } from '../ports/event-store.js';
import { comparePositions, type Position } from '../ports/position.js';
import { checkLink, genesisHash, type ChainBreakReason } from './hash-chain.js';
import { occurredAt } from '../metadata.js';
import { toAuditEvent, type AuditEvent, type EventReader } from './stream-history.js';

export type ExportFilter = {
  readonly from?: Date | undefined;
  /** Exclusive. */
  readonly to?: Date | undefined;
  readonly streamPrefix?: string | undefined;
  /**
   * Inclusive: the last position the export may hold, the store's head when it began
   * (`EventStore.headPosition`), so that events committed while it streams are left out and two
   * exports cut at one position hold the same events. `undefined`: wherever the read ends.
   */
  readonly upTo?: Position | undefined;
};

/**
 * Every event matching `filter`, in global order, one at a time, as `reading` shows the stored
 * log (revealed, or as stored): the reader pages through the store, so memory stays flat however
 * long the log. The time filter is applied to the events as stored, before they reach `reading`:
 * an event outside the window is never revealed, so an export of an empty window looks up no key.
 * No store reads by time, so it is applied as events pass (positions follow commit order, not
 * `occurredAt` order, so the scan cannot stop early at `to`); the read stops at the first event
 * past `upTo`, before it is revealed.
 */
export async function* exportEvents(stored: EventStore, reading: (stored: EventStore) => EventReader, filter: ExportFilter): AsyncGenerator<AuditEvent> {
  const narrowed = filter.from === undefined && filter.to === undefined && filter.upTo === undefined ? stored : narrowedTo(stored, filter);
  const events = reading(narrowed).readAll(filter.streamPrefix === undefined ? {} : { filter: { streamPrefixes: [filter.streamPrefix] } });
  for await (const event of events) yield toAuditEvent(event);
}

/**
 * The store with only the events that occurred in `[from, to)` to read, and its global order
 * ending at `upTo`. `occurredAt` is metadata, never sealed, so the stored event says it as the
 * revealed one would.
 */
function narrowedTo(stored: EventStore, filter: ExportFilter): EventStore {
  const within = (event: RecordedEvent) => {
    const at = occurredAt(event);
    return (filter.from === undefined || at >= filter.from) && (filter.to === undefined || at < filter.to);
  };
  const inOrder = (events: AsyncIterable<RecordedEvent>) => keeping(events, within, filter.upTo);
  return {
    appendToStream: (streamId, events, options) => stored.appendToStream(streamId, events, options),
    readStream: async (streamId, options) => {
      const read = await stored.readStream(streamId, options);
      return read.status === 'found' ? { status: 'found', events: keeping(read.events, within, undefined) } : read;
    },
    readAll: (options) => inOrder(stored.readAll(options)),
    subscribeToAll: (options) => inOrder(stored.subscribeToAll(options)),
    headPosition: () => stored.headPosition(),
    close: () => stored.close(),
  };
}

/** The events `keep` keeps, ending before the first past `upTo`: for reads in global order, where positions only grow. */
async function* keeping(events: AsyncIterable<RecordedEvent>, keep: (event: RecordedEvent) => boolean, upTo: Position | undefined): AsyncGenerator<RecordedEvent> {
  for await (const event of events) {
    // Leaving the loop ends the store's read: nothing past the cut is read further.
    if (upTo !== undefined && comparePositions(event.position, upTo) > 0) return;
    if (keep(event)) yield event;
  }
}

export type StreamBreak = { readonly streamId: string; readonly revision: number; readonly reason: ChainBreakReason };

/** An event of a stream (see `UnhashedEvent`). */
export type StreamEvent = { readonly streamId: string; readonly revision: number };

export type LogVerification = {
  readonly streams: number;
  readonly events: number;
  /** The first broken revision of each broken stream, in the order they were found. */
  readonly broken: readonly StreamBreak[];
  /** How many events without a hash of their own a later link covers (each handed to `onUnhashed`): counted, not kept. */
  readonly unhashed: number;
  /** Where each unbroken stream's unverified tail begins: events without a hash that no link covers. */
  readonly unverifiedTails: readonly StreamEvent[];
};

/** `uncoveredFrom`: the first of the unhashed events since the last hashed one, which no link covers yet. */
type Link = { prevHash: string; nextRevision: number; broken: boolean; uncoveredFrom: number | undefined };

/**
 * Verifies every stream's chain in one pass over the global order (a stream's events come in
 * revision order within it), as `verifyChain` does. Remembers one hash per stream, not the events.
 */
export async function verifyAllStreams(
  reader: EventReader,
  report: {
    readonly onBreak?: (found: StreamBreak) => void;
    readonly onUnhashed?: (event: StreamEvent) => void;
    /** At the end, once no later event can cover it. */
    readonly onUnverifiedTail?: (from: StreamEvent) => void;
  } = {},
): Promise<LogVerification> {
  const links = new Map<string, Link>();
  const broken: StreamBreak[] = [];
  let events = 0;
  let unhashed = 0;
  for await (const event of reader.readAll()) {
    events++;
    const link = links.get(event.streamId) ?? { prevHash: genesisHash, nextRevision: 0, broken: false, uncoveredFrom: undefined };
    links.set(event.streamId, link);
    if (link.broken) continue;
    const checked = checkLink(link.prevHash, link.nextRevision, event);
    if (checked.outcome === 'broken') {
      link.broken = true;
      const found = { streamId: event.streamId, revision: event.revision, reason: checked.reason };
      broken.push(found);
      report.onBreak?.(found);
      continue;
    }
    if (checked.outcome === 'unhashed') {
      link.uncoveredFrom ??= event.revision;
    } else if (link.uncoveredFrom !== undefined) {
      for (let revision = link.uncoveredFrom; revision < event.revision; revision++) {
        unhashed++;
        report.onUnhashed?.({ streamId: event.streamId, revision });
      }
      link.uncoveredFrom = undefined;
    }
    link.prevHash = checked.hash;
    link.nextRevision++;
  }
  const unverifiedTails: StreamEvent[] = [];
  for (const [streamId, link] of links) {
    if (link.broken || link.uncoveredFrom === undefined) continue;
    const from = { streamId, revision: link.uncoveredFrom };
    unverifiedTails.push(from);
    report.onUnverifiedTail?.(from);
  }
  return { streams: links.size, events, broken, unhashed, unverifiedTails };
}
