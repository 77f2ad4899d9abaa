import type { Position } from '../ports/event-store.js';

/** A stream folded up to `revision`; `recent` remembers the last events' ids for retry detection. */
export type CachedStream<State> = {
  readonly state: State;
  readonly revision: number;
  readonly position: Position;
  readonly recent: readonly RecentEvent[];
  /** The audit chain hash of the event at `revision` (the genesis hash before the first): the next event's `prevHash`. */
  readonly hash: string;
};

export type RecentEvent = { readonly id: string; readonly revision: number; readonly position: Position };

/** Streams per aggregate a cache keeps unless told otherwise (`COMMAND_CACHE_STREAMS`): about 2 KB a state. */
export const defaultCachedStreams = 2_000;

/**
 * In-process snapshots: the last folded state of the most recently used streams, so a command on
 * a stream of 10,000 events reads and folds only what was appended since. It is only a cache:
 * every append names the revision the cached state stands for, so another process writing the
 * same stream is seen (the append fails, the tail is read, the command decided again), never
 * overwritten. States must be immutable, which `evolve` guarantees by returning new values.
 */
export class StateCache<State> {
  private readonly entries = new Map<string, CachedStream<State>>();

  constructor(private readonly maxStreams = defaultCachedStreams) {}

  get(streamId: string): CachedStream<State> | undefined {
    const entry = this.entries.get(streamId);
    if (!entry) return undefined;
    // Re-insert to keep Map order as least-recently-used first.
    this.entries.delete(streamId);
    this.entries.set(streamId, entry);
    return entry;
  }

  set(streamId: string, entry: CachedStream<State>): void {
    this.entries.delete(streamId);
    this.entries.set(streamId, entry);
    if (this.entries.size > this.maxStreams) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
  }

  has(streamId: string): boolean {
    return this.entries.has(streamId);
  }

  /** Forgets a stream, e.g. after a subject's personal data was erased. */
  delete(streamId: string): void {
    this.entries.delete(streamId);
  }
}
