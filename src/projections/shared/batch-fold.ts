import type { DomainEvent, EventCodec } from '../../application/command-handling/event-codec.js';
import type { RecordedEvent } from '../../application/ports/event-store.js';

/** A stored event with its typed form (upcasters applied): read models never trust raw `data`. */
export type Decoded<Event> = { readonly recorded: RecordedEvent; readonly event: Event };

/** The events of a batch that `codec` knows, decoded, still in global order. */
export function decodeKnown<Event extends DomainEvent>(codec: EventCodec<Event>, events: readonly RecordedEvent[]): Decoded<Event>[] {
  const known = new Set(codec.eventTypes);
  return events.filter((recorded) => known.has(recorded.type)).map((recorded) => ({ recorded, event: codec.decode(recorded) }));
}

/** Every row a read model keeps carries the revision of the last event of its stream it applied. */
export type Versioned = { readonly version: number };

/**
 * Folds one batch onto the rows it touches, in memory: the caller loads those rows once and
 * writes the changed ones back with one upsert, instead of a round trip per event. An event at
 * or below a row's `version` was applied before (a replayed batch) and changes nothing.
 * `evolve` answers the row after the event, or `undefined` when the event does not apply (e.g.
 * a later event of a stream whose first event this read model never kept).
 */
export function foldRows<Row extends Versioned, Event>(options: {
  readonly events: readonly Decoded<Event>[];
  readonly loaded: readonly Row[];
  readonly keyOfRow: (row: Row) => string;
  readonly keyOfEvent: (event: Event) => string;
  readonly evolve: (row: Row | undefined, event: Event, recorded: RecordedEvent) => Row | undefined;
}): Row[] {
  const rows = new Map(options.loaded.map((row) => [options.keyOfRow(row), row]));
  const changed = new Set<string>();
  for (const { event, recorded } of options.events) {
    const key = options.keyOfEvent(event);
    const row = rows.get(key);
    if (row && recorded.revision <= row.version) continue;
    const next = options.evolve(row, event, recorded);
    if (!next) continue;
    rows.set(key, next);
    changed.add(key);
  }
  return [...changed].flatMap((key) => {
    const row = rows.get(key);
    return row ? [row] : [];
  });
}

export function distinct<T>(values: Iterable<T>): T[] {
  return [...new Set(values)];
}

