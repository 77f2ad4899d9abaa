import type { CheckpointNotifications } from '../../projections/runtime/wait-for-position.js';

export type QueryCacheOptions = {
  /** Most bytes of answers kept, their entries' overhead included, least recently used out first; 0 keeps none. */
  readonly maxBytes: number;
  /**
   * Longest an answer is served. Only a backstop: a projector's commit ends an answer's life at
   * once, unless its notification is lost without the connection noticing (a half-open socket).
   */
  readonly maxAgeMs: number;
  readonly now?: () => number;
  /** Told whether each lookup found a fresh answer, e.g. to count them in metrics. */
  readonly onLookup?: (outcome: 'hit' | 'miss') => void;
};

/**
 * Heap an entry takes besides the characters of its key and body: the key string built by
 * concatenation, the stamp with its commits array, the entry object and its Map slot. Measured
 * in heap snapshots at about 400 bytes; without it the cache held some 1.7 times the bytes it
 * counted, and many times more for tiny answers (`[]`).
 */
export const entryOverheadBytes = 512;

/** What the read models had committed when an answer was read, as far as this process heard. */
export type Stamp = { readonly epoch: number; readonly commits: readonly number[]; readonly at: number };

type Entry = { readonly projections: readonly string[]; readonly stamp: Stamp; readonly body: string; readonly bytes: number };

/**
 * Serialized answers of the query API, each kept until a read model it was read from commits
 * again. Read models change only in projector commits, and each commit of an active generation
 * is announced (`projection_checkpoint`) once visible: an answer read after the last
 * announcement of its read models is what reading again would give. So an entry is served only
 * while no announcement of them has arrived since, on the same listening connection (a reconnect
 * may have lost some), and nothing is kept while nobody listens.
 */
export class QueryCache {
  private readonly entries = new Map<string, Entry>();
  /** Announcements heard per projection: the count, not the position, so a swap at the same position counts too. */
  private readonly commits = new Map<string, number>();
  private bytes = 0;
  private readonly now: () => number;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly notifications: CheckpointNotifications,
    private readonly options: QueryCacheOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.unsubscribe = notifications.subscribe(({ name }) => this.commits.set(name, (this.commits.get(name) ?? 0) + 1));
  }

  /** Taken before reading an answer to keep; `undefined` when it could not be kept (cache off, nobody listening). */
  stamp(projections: readonly string[]): Stamp | undefined {
    const epoch = this.notifications.epoch;
    if (epoch === undefined || this.options.maxBytes <= 0) return undefined;
    return { epoch, commits: projections.map((name) => this.commits.get(name) ?? 0), at: this.now() };
  }

  /** The answer kept for `key`, if none of its read models has committed since it was read. */
  get(key: string): string | undefined {
    const entry = this.entries.get(key);
    if (!entry || !this.fresh(entry)) {
      if (entry) this.remove(key, entry);
      this.options.onLookup?.('miss');
      return undefined;
    }
    this.options.onLookup?.('hit');
    // Map order is the recency order: the least recently used entry goes first.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.body;
  }

  /** Keeps `body`, read after `stamp` was taken from `projections`. */
  set(key: string, projections: readonly string[], stamp: Stamp, body: string): void {
    // Strings hold up to two bytes per character; the key is kept too.
    const bytes = 2 * (key.length + body.length) + entryOverheadBytes;
    if (bytes > this.options.maxBytes) return;
    const previous = this.entries.get(key);
    if (previous) this.remove(key, previous);
    const entry = { projections, stamp, body, bytes };
    if (!this.fresh(entry)) return;
    this.entries.set(key, entry);
    this.bytes += bytes;
    for (const [oldest, evicted] of this.entries) {
      if (this.bytes <= this.options.maxBytes) break;
      this.remove(oldest, evicted);
    }
  }

  get size(): { readonly entries: number; readonly bytes: number } {
    return { entries: this.entries.size, bytes: this.bytes };
  }

  close(): void {
    this.unsubscribe();
    this.entries.clear();
    this.bytes = 0;
  }

  private fresh({ projections, stamp }: Entry): boolean {
    if (stamp.epoch !== this.notifications.epoch || this.now() - stamp.at > this.options.maxAgeMs) return false;
    return projections.every((name, index) => (this.commits.get(name) ?? 0) === stamp.commits[index]);
  }

  private remove(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}
