import type {
  AppendResult,
  EventStore,
  ExpectedRevision,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  ReadStreamResult,
  RecordedEvent,
  SubscribeOptions,
} from '../../application/ports/event-store.js';
import { comparePositions, START, type Position } from '../../application/ports/position.js';
import { UnrevealableEventError } from '../../application/privacy/revealing-event-store.js';
import { sleep } from '../../application/sleep.js';

export type SharedTailOptions = {
  /** Most recent events kept in memory for subscribers to read from (up to a quarter more between trims). */
  readonly bufferSize?: number;
  /** Page size of a subscriber's catch-up from the store, before it joins the shared tail. */
  readonly catchUpPage?: number;
  readonly onError?: (error: unknown) => void;
};

/**
 * Wraps an event store so that the unfiltered subscriptions of one process (one per read model)
 * share one live reader: the store is asked and each event decoded once, not once per
 * projection. It keeps the most recent events in memory; a subscriber further behind catches up
 * from the store with `readAll`, then joins the shared tail. `readAll` and the tail are the same
 * total order, so the switch neither skips nor repeats. Everything else goes straight through.
 */
export class SharedTailEventStore implements EventStore {
  /** Every event with a position in `(from, last]`, in order. */
  private buffer: RecordedEvent[] = [];
  private from: Position | undefined;
  /**
   * Where the shared reader stands when it cannot reveal the event after it, until it gets past:
   * subscribers that reach it read from the store themselves, and so meet the failure, each on
   * its own terms (a projector retries it, then stops there on record). Waiting for the reader
   * instead, they waited for good, and not one of them knew why.
   */
  private stuckAfter: Position | undefined;
  private reader: AbortController | undefined;
  private wake: (() => void)[] = [];
  private closed = false;
  private readonly bufferSize: number;
  private readonly dropEvery: number;
  private readonly catchUpPage: number;

  constructor(
    private readonly inner: EventStore,
    private readonly options: SharedTailOptions = {},
  ) {
    this.bufferSize = options.bufferSize ?? 5_000;
    this.dropEvery = Math.ceil(this.bufferSize / 4);
    this.catchUpPage = options.catchUpPage ?? 1_000;
  }

  appendToStream(streamId: string, events: readonly NewEvent[], options?: { readonly expectedRevision?: ExpectedRevision }): Promise<AppendResult> {
    return this.inner.appendToStream(streamId, events, options);
  }

  readStream(streamId: string, options?: ReadStreamOptions): Promise<ReadStreamResult> {
    return this.inner.readStream(streamId, options);
  }

  readAll(options?: ReadAllOptions): AsyncIterable<RecordedEvent> {
    return this.inner.readAll(options);
  }

  subscribeToAll(options: SubscribeOptions = {}): AsyncIterable<RecordedEvent> {
    // Filtered subscriptions are few (process managers) and cheap on the server side.
    if (options.filter) return this.inner.subscribeToAll(options);
    return { [Symbol.asyncIterator]: () => this.follow(options.after, options.signal) };
  }

  headPosition(): Promise<Position> {
    return this.inner.headPosition();
  }

  async close(): Promise<void> {
    this.detach();
    await this.inner.close();
  }

  /** Stops the shared reader and ends every subscription, leaving the wrapped store open. */
  detach(): void {
    this.closed = true;
    this.reader?.abort();
    this.notify();
  }

  private async *follow(start: Position | undefined, signal: AbortSignal | undefined): AsyncGenerator<RecordedEvent> {
    let after = start ?? START;
    const stopped = () => this.closed || signal?.aborted === true;
    // One listener for the subscription's life, not one per wait: a wait comes with every event.
    const wakeOnAbort = () => this.notify();
    signal?.addEventListener('abort', wakeOnAbort, { once: true });
    this.readFrom(after);
    try {
      while (!stopped()) {
        const from = this.from;
        const stuck = this.stuckAfter;
        if ((from && comparePositions(after, from) < 0) || (stuck && comparePositions(after, stuck) >= 0)) {
          // Behind the shared tail, or where it cannot go on: read from the store, one page at a time.
          let read = 0;
          for await (const event of this.inner.readAll({ after, maxCount: this.catchUpPage })) {
            if (stopped()) return;
            yield event;
            after = event.position;
            read++;
          }
          // Nothing read although the tail starts later: those events are not visible yet (they
          // will be); serving the tail now would skip them.
          if (read === 0) await sleep(10);
          continue;
        }
        const index = this.firstAfter(after);
        if (index < this.buffer.length) {
          const batch = this.buffer.slice(index);
          for (const event of batch) {
            if (stopped()) return;
            yield event;
            after = event.position;
          }
          continue;
        }
        await this.changed(signal);
      }
    } finally {
      signal?.removeEventListener('abort', wakeOnAbort);
    }
  }

  /** Index of the first buffered event after `after` (buffer length if none). */
  private firstAfter(after: Position): number {
    let low = 0;
    let high = this.buffer.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      const event = this.buffer[middle];
      if (event && comparePositions(event.position, after) <= 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /**
   * Keeps the shared reader at the furthest subscriber's start: started at the first one's, a
   * rebuild subscribing from the first event would hold every caught-up subscriber back until
   * the reader had read the whole log again. A subscriber that starts past the reader moves it
   * there, with an empty buffer; those behind catch up from the store, as every straggler does.
   * Those already waiting for the old reader's next event are woken to see it: the new reader
   * pushes nothing before the next append, and events between their place and its start,
   * appended while the old one lagged, would wait for that append (minutes on a quiet system).
   */
  private readFrom(after: Position): void {
    if (this.closed) return;
    const reached = this.buffer[this.buffer.length - 1]?.position ?? this.from;
    if (reached && comparePositions(after, reached) <= 0) return;
    this.reader?.abort();
    this.buffer = [];
    this.startReader(after);
    this.notify();
  }

  private startReader(after: Position): void {
    const reader = new AbortController();
    this.reader = reader;
    this.from = after;
    this.stuckAfter = undefined;
    const run = async () => {
      let position = after;
      while (!reader.signal.aborted) {
        try {
          for await (const event of this.inner.subscribeToAll({ after: position, signal: reader.signal })) {
            // A reader moved on (see `readFrom`) must not add what it had in hand to its successor's buffer.
            if (reader.signal.aborted) return;
            this.buffer.push(event);
            position = event.position;
            this.stuckAfter = undefined;
            // Dropped a quarter at a time: one event at a time, every push past the size would
            // move the whole buffer along.
            if (this.buffer.length > this.bufferSize + this.dropEvery) {
              const dropped = this.buffer.splice(0, this.buffer.length - this.bufferSize);
              const last = dropped[dropped.length - 1];
              if (last) this.from = last.position;
            }
            this.notify();
          }
        } catch (error) {
          if (reader.signal.aborted) return;
          if (error instanceof UnrevealableEventError) {
            this.stuckAfter = position;
            this.notify();
          }
          this.options.onError?.(error);
          await sleep(1_000, reader.signal);
        }
      }
    };
    void run();
  }

  private notify(): void {
    const waiting = this.wake;
    this.wake = [];
    for (const resolve of waiting) resolve();
  }

  /** Resolves on the next event or stop; an abort of `signal` wakes every waiter (see `follow`). */
  private changed(signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted || this.closed) return resolve();
      this.wake.push(resolve);
    });
  }
}
