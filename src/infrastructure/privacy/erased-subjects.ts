import type pg from 'pg';
import type { PersonalDataVault } from '../../application/privacy/personal-data-vault.js';

export type ErasedSubjectsOptions = {
  /** The database holding `subject_keys`; polling stops once it ends. */
  readonly pool: pg.Pool;
  /** How long an access token lives: a subject erased longer ago than that has no live token left. */
  readonly tokenLifetimeMs: number;
  /** How often the tombstones are read; default 1 s, the longest another process honours an erased person's token. */
  readonly pollIntervalMs?: number;
  /**
   * The process's vault, told of each erasure as it is first seen so that it stops revealing the
   * person's data with a key it still holds in memory (for up to its `keyCacheMs` otherwise).
   */
  readonly vault?: Pick<PersonalDataVault, 'markErased'>;
  /** Told of a failed read; the next poll tries again. */
  readonly onError?: (error: unknown) => void;
};

/**
 * Beyond the token lifetime: a token may be signed a moment after the erasure (a refresh that
 * passed its checks just before), and its expiry is judged by this process's clock, not the
 * database's.
 */
const marginMs = 60_000;

/**
 * Each poll reads again what was erased in this long before the previous one: an erasure stamps
 * `erased_at` when its statement starts and is seen only once it commits, which may be after a
 * poll whose clock had passed the stamp.
 */
const overlapMs = 10_000;

type Row = { now: Date; subject_id: string | null; erased_at: Date | null };

/**
 * The subjects erased within the last access-token lifetime, as this process knows them: the
 * tombstones in `subject_keys` (by the database's clock), read incrementally every second, and
 * the erasures this process made itself, at once. `has` is a lookup in memory, cheap enough for
 * every request. Each erasure it first hears of it passes on to the process's vault. While the
 * database cannot be read the set stays as it was (an erasure meanwhile is honoured once a read
 * succeeds).
 */
export class ErasedSubjects {
  /** Subject id → when it was erased, by the database's clock (ms since the epoch). */
  private readonly erasedAt = new Map<string, number>();
  private readonly rememberMs: number;
  private readonly pollIntervalMs: number;
  /** The database's clock at the last read, and this process's (`performance.now()`) at that moment. */
  private clock: { readonly databaseMs: number; readonly localMs: number } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private closed = false;

  private constructor(private readonly options: ErasedSubjectsOptions) {
    this.rememberMs = options.tokenLifetimeMs + marginMs;
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
  }

  /**
   * Reads the erasures of the last token lifetime, then keeps polling. Awaited, so a process that
   * just started knows them before it serves; a failed first read is reported, not thrown.
   */
  static async start(options: ErasedSubjectsOptions): Promise<ErasedSubjects> {
    const erased = new ErasedSubjects(options);
    await erased.pollOnce();
    erased.schedule();
    return erased;
  }

  /** Whether `subjectId` was erased within the last token lifetime. Bound, to be handed on as a function. */
  readonly has = (subjectId: string): boolean => this.erasedAt.has(subjectId);

  /** An erasure this process just made: known at once, rather than at the next poll. */
  add(subjectId: string): void {
    // The next poll that sees its tombstone puts the recorded time in its place.
    this.erasedAt.set(subjectId, this.databaseNow());
    this.options.vault?.markErased(subjectId);
  }

  /** Stops polling and waits for a read under way. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.polling;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.polling = this.pollOnce().then(() => this.schedule());
    }, this.pollIntervalMs);
    // Polling must not keep the process alive on shutdown.
    this.timer.unref();
  }

  private async pollOnce(): Promise<void> {
    // The pool ends as the process stops.
    if (this.options.pool.ending) {
      this.closed = true;
      return;
    }
    try {
      this.apply(await this.read());
    } catch (error) {
      if (!this.options.pool.ending) this.options.onError?.(error);
    }
  }

  /**
   * The tombstones stamped since shortly before the last read, or within the token lifetime on
   * the first; one row with the database's clock even when there are none.
   */
  private async read(): Promise<Row[]> {
    const since = this.clock ? new Date(this.clock.databaseMs - overlapMs) : null;
    const { rows } = await this.options.pool.query<Row>({
      name: 'erased_subjects_since',
      text: `SELECT clock.now, k.subject_id, k.erased_at
             FROM (SELECT now() AS now) AS clock
             LEFT JOIN subject_keys AS k
               ON k.erased_at > greatest($1::timestamptz, clock.now - make_interval(secs => $2::float8))`,
      values: [since, this.rememberMs / 1000],
    });
    return rows;
  }

  private apply(rows: readonly Row[]): void {
    const [first] = rows;
    if (!first) return;
    this.clock = { databaseMs: first.now.getTime(), localMs: performance.now() };
    for (const row of rows) {
      if (row.subject_id === null || row.erased_at === null) continue;
      if (!this.erasedAt.has(row.subject_id)) this.options.vault?.markErased(row.subject_id);
      this.erasedAt.set(row.subject_id, row.erased_at.getTime());
    }
    const forgetBefore = this.clock.databaseMs - this.rememberMs;
    for (const [subjectId, erasedAt] of this.erasedAt) if (erasedAt < forgetBefore) this.erasedAt.delete(subjectId);
  }

  /** The database's clock now, as this process last heard it plus the time since; its own before the first read. */
  private databaseNow(): number {
    return this.clock ? this.clock.databaseMs + (performance.now() - this.clock.localMs) : Date.now();
  }
}
