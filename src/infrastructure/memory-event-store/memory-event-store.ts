import {
  checkAppend,
  ConcurrencyError,
  DuplicateEventError,
  matchesFilter,
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
import { comparePositions, START, type Position } from '../../application/ports/position.js';

export type MemoryEventStoreOptions = {
  /** The store's clock for `recordedAt`; tests pass a fixed one. */
  readonly now?: () => Date;
};

/**
 * The EventStore port in one process's memory, for unit tests of command handlers and
 * projections. Every call is synchronous inside, so an append is trivially atomic and the global
 * log is always in position order; what it must get right is the port's semantics, exactly.
 */
export class MemoryEventStore implements EventStore {
  /** The global log; an event's index in it is its position's `commit` minus one. */
  private readonly log: RecordedEvent[] = [];
  private readonly streams = new Map<string, RecordedEvent[]>();
  /** Live subscriptions parked until the next append (or close). */
  private readonly waiters = new Set<() => void>();
  private readonly now: () => Date;
  private lastPosition = 0n;
  private closed = false;

  constructor(options: MemoryEventStoreOptions = {}) {
    this.now = options.now ?? (() => new Date());
  }

  async appendToStream(
    streamId: string,
    events: readonly NewEvent[],
    options: { readonly expectedRevision?: ExpectedRevision } = {},
  ): Promise<AppendResult> {
    this.assertOpen();
    const expected = options.expectedRevision ?? 'any';
    checkAppend(streamId, events, expected);
    const stream = this.streams.get(streamId) ?? [];

    // The id check comes before the revision check: a retry's expected revision is stale by
    // definition, and the port promises it the original result, not a conflict.
    const byId = new Map(stream.map((event) => [event.id, event]));
    const repeated = events.flatMap((event) => byId.get(event.id) ?? []);
    if (repeated.length === events.length && new Set(events.map((event) => event.id)).size === events.length) {
      const last = repeated.reduce((a, b) => (b.revision > a.revision ? b : a));
      return { revision: last.revision, position: last.position, written: false };
    }
    const ids = events.map((event) => event.id);
    const repeatedInBatch = ids.filter((id, index) => ids.indexOf(id) !== index);
    if (repeated.length > 0 || repeatedInBatch.length > 0) {
      throw new DuplicateEventError(streamId, [...new Set([...repeated.map((event) => event.id), ...repeatedInBatch])]);
    }

    const actual = stream.length === 0 ? 'no_stream' : stream.length - 1;
    if (!matchesExpected(expected, actual)) throw new ConcurrencyError(streamId, expected, actual);

    const recordedAt = this.now();
    const recorded = events.map((event, index) =>
      deepFreeze<RecordedEvent>({
        id: event.id,
        type: event.type,
        // Every real adapter stores JSON: a caller mutating its object afterwards changes nothing.
        data: structuredClone(event.data),
        metadata: structuredClone(event.metadata),
        streamId,
        revision: stream.length + index,
        position: this.nextPosition(),
        recordedAt: new Date(recordedAt),
      }),
    );
    this.streams.set(streamId, [...stream, ...recorded]);
    this.log.push(...recorded);
    this.wakeSubscribers();

    const last = recorded[recorded.length - 1];
    if (!last) throw new Error('unreachable: the batch is not empty');
    return { revision: last.revision, position: last.position, written: true };
  }

  async readStream(streamId: string, options: ReadStreamOptions = {}): Promise<ReadStreamResult> {
    this.assertOpen();
    const stream = this.streams.get(streamId);
    if (!stream) return { status: 'no_stream' };
    const { from, direction = 'forwards', maxCount = Number.POSITIVE_INFINITY } = options;
    const selected =
      direction === 'forwards'
        ? stream.filter((event) => event.revision >= (from ?? 0))
        : stream.filter((event) => event.revision <= (from ?? stream.length - 1)).reverse();
    return { status: 'found', events: iterate(selected.slice(0, Math.max(0, maxCount))) };
  }

  readAll(options: ReadAllOptions = {}): AsyncIterable<RecordedEvent> {
    const { after = START, maxCount = Number.POSITIVE_INFINITY, filter } = options;
    return {
      [Symbol.asyncIterator]: () => {
        this.assertOpen();
        const selected = this.log.slice(this.indexAfter(after)).filter((event) => matchesFilter(event, filter));
        return iterate(selected.slice(0, Math.max(0, maxCount)))[Symbol.asyncIterator]();
      },
    };
  }

  async headPosition(): Promise<Position> {
    this.assertOpen();
    return this.log.at(-1)?.position ?? START;
  }

  subscribeToAll(options: SubscribeOptions = {}): AsyncIterable<RecordedEvent> {
    return { [Symbol.asyncIterator]: () => this.subscribe(options) };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wakeSubscribers();
  }

  private async *subscribe(options: SubscribeOptions): AsyncGenerator<RecordedEvent> {
    this.assertOpen();
    const { after = START, filter, signal } = options;
    let index = this.indexAfter(after);
    let wake: (() => void) | undefined;
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal?.aborted && !this.closed) {
        const event = this.log[index];
        if (event) {
          index += 1;
          if (matchesFilter(event, filter)) yield event;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
          this.waiters.add(resolve);
        });
        if (wake) this.waiters.delete(wake);
        wake = undefined;
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      if (wake) this.waiters.delete(wake);
    }
  }

  private nextPosition(): Position {
    this.lastPosition += 1n;
    return { commit: this.lastPosition, prepare: this.lastPosition };
  }

  /** Index in the log of the first event after `after`: positions are sorted, so binary search. */
  private indexAfter(after: Position): number {
    let low = 0;
    let high = this.log.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const event = this.log[middle];
      if (event && comparePositions(event.position, after) <= 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  private wakeSubscribers(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('The event store is closed');
  }
}

function matchesExpected(expected: ExpectedRevision, actual: number | 'no_stream'): boolean {
  switch (expected) {
    case 'any':
      return true;
    case 'no_stream':
      return actual === 'no_stream';
    case 'stream_exists':
      return actual !== 'no_stream';
    default:
      return expected === actual;
  }
}

function iterate<T>(items: readonly T[]): AsyncIterable<T> {
  return {
    async *[Symbol.asyncIterator]() {
      yield* items;
    },
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !(value instanceof Date)) {
    for (const nested of Object.values(value)) deepFreeze(nested);
    Object.freeze(value);
  }
  return value;
}
