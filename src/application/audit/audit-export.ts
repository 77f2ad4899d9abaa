import { brokenLink, genesisHash, storedHash, type ChainBreakReason } from './hash-chain.js';
import { occurredAt, toAuditEvent, type AuditEvent, type EventReader } from './stream-history.js';

export type ExportFilter = {
  readonly from?: Date | undefined;
  /** Exclusive. */
  readonly to?: Date | undefined;
  readonly streamPrefix?: string | undefined;
};

/**
 * Every event matching `filter`, in global order, one at a time: the reader pages through the
 * store, so memory stays flat however long the log. The time filter is applied as events pass
 * (positions follow commit order, not `occurredAt` order, so the scan cannot stop early at `to`).
 */
export async function* exportEvents(reader: EventReader, filter: ExportFilter): AsyncGenerator<AuditEvent> {
  const events = reader.readAll(filter.streamPrefix === undefined ? {} : { filter: { streamPrefixes: [filter.streamPrefix] } });
  for await (const event of events) {
    const at = occurredAt(event);
    if (filter.from !== undefined && at < filter.from) continue;
    if (filter.to !== undefined && at >= filter.to) continue;
    yield toAuditEvent(event);
  }
}

export type StreamBreak = { readonly streamId: string; readonly revision: number; readonly reason: ChainBreakReason };

export type LogVerification = {
  readonly streams: number;
  readonly events: number;
  /** The first broken revision of each broken stream, in the order they were found. */
  readonly broken: readonly StreamBreak[];
};

type Link = { prevHash: string; nextRevision: number; broken: boolean };

/**
 * Verifies every stream's chain in one pass over the global order (a stream's events come in
 * revision order within it). Remembers one hash per stream, not the events.
 */
export async function verifyAllStreams(reader: EventReader, onBreak?: (found: StreamBreak) => void): Promise<LogVerification> {
  const links = new Map<string, Link>();
  const broken: StreamBreak[] = [];
  let events = 0;
  for await (const event of reader.readAll()) {
    events++;
    const link = links.get(event.streamId) ?? { prevHash: genesisHash, nextRevision: 0, broken: false };
    links.set(event.streamId, link);
    if (link.broken) continue;
    const reason = brokenLink(link.prevHash, link.nextRevision, event);
    if (reason) {
      link.broken = true;
      const found = { streamId: event.streamId, revision: event.revision, reason };
      broken.push(found);
      onBreak?.(found);
      continue;
    }
    link.prevHash = storedHash(event) ?? genesisHash;
    link.nextRevision++;
  }
  return { streams: links.size, events, broken };
}
