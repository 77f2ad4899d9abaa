import { formatPosition, START, type Position } from '../../application/ports/position.js';

/**
 * - `standby`: waiting for the generation's lock (another process is its writer);
 * - `starting`: lock held, creating the schema or reading the checkpoint;
 * - `running` / `rebuilding`: projecting, as the active generation or beside it;
 * - `failed`: stopped on an event its handler kept throwing on; holds the lock so that no other
 *   process retries it in a loop;
 * - `stopped`: not projecting (the runtime stopped, or the generation was retired).
 */
export type ProjectorState = 'standby' | 'starting' | 'running' | 'rebuilding' | 'failed' | 'stopped';

/** One projector's numbers as plain data, for the admin API and a Prometheus exporter. */
export type ProjectionStatus = {
  readonly name: string;
  readonly generation: number;
  readonly version: number;
  readonly state: ProjectorState;
  /** Last committed position (`formatPosition` form). */
  readonly position: string;
  /** Events committed by this process since it took the lock (all of them, handled or skipped). */
  readonly eventsProcessed: number;
  readonly batchesCommitted: number;
  readonly lastBatchSize: number;
  readonly lastBatchDurationMs: number | null;
  /** Over the last ten seconds. */
  readonly eventsPerSecond: number;
  /** `recordedAt` of the last event committed. */
  readonly lastEventRecordedAt: Date | null;
  /** When that event's batch committed. */
  readonly lastProjectedAt: Date | null;
  /** From the store recording the last event to its batch committing. */
  readonly lagMs: number | null;
  /**
   * A rebuild's tries in a row to swap in that did not (a lock not granted in time, or the live
   * generation moved past the batch meanwhile); 0 once it swaps in.
   */
  readonly failedSwapTries: number;
  readonly lastError: { readonly message: string; readonly eventType: string | null; readonly position: string | null; readonly at: Date } | null;
};

const rateWindowMs = 10_000;

export class ProjectorMetrics {
  state: ProjectorState = 'standby';
  position: Position = START;
  failedSwapTries = 0;
  private eventsProcessed = 0;
  private batchesCommitted = 0;
  private lastBatchSize = 0;
  private lastBatchDurationMs: number | null = null;
  private lastEventRecordedAt: Date | null = null;
  private lastProjectedAt: Date | null = null;
  private lastError: ProjectionStatus['lastError'] = null;
  /** Committed batches inside the rate window: when (ms) and how many events. */
  private recent: { at: number; events: number }[] = [];

  constructor(
    readonly name: string,
    readonly generation: number,
    readonly version: number,
    private readonly now: () => Date,
  ) {}

  batchCommitted(batch: { position: Position; events: number; durationMs: number; lastEventRecordedAt: Date }): void {
    const at = this.now();
    this.position = batch.position;
    this.eventsProcessed += batch.events;
    this.batchesCommitted += 1;
    this.lastBatchSize = batch.events;
    this.lastBatchDurationMs = batch.durationMs;
    this.lastEventRecordedAt = batch.lastEventRecordedAt;
    this.lastProjectedAt = at;
    this.recent.push({ at: at.getTime(), events: batch.events });
    this.prune(at.getTime());
  }

  failed(error: { message: string; eventType: string | null; position: Position | null }): void {
    this.lastError = {
      message: error.message,
      eventType: error.eventType,
      position: error.position ? formatPosition(error.position) : null,
      at: this.now(),
    };
  }

  snapshot(): ProjectionStatus {
    const now = this.now().getTime();
    this.prune(now);
    const events = this.recent.reduce((sum, entry) => sum + entry.events, 0);
    return {
      name: this.name,
      generation: this.generation,
      version: this.version,
      state: this.state,
      position: formatPosition(this.position),
      eventsProcessed: this.eventsProcessed,
      batchesCommitted: this.batchesCommitted,
      lastBatchSize: this.lastBatchSize,
      lastBatchDurationMs: this.lastBatchDurationMs,
      eventsPerSecond: events / (rateWindowMs / 1000),
      lastEventRecordedAt: this.lastEventRecordedAt,
      lastProjectedAt: this.lastProjectedAt,
      lagMs:
        this.lastProjectedAt && this.lastEventRecordedAt
          ? this.lastProjectedAt.getTime() - this.lastEventRecordedAt.getTime()
          : null,
      failedSwapTries: this.failedSwapTries,
      lastError: this.lastError,
    };
  }

  private prune(now: number): void {
    this.recent = this.recent.filter((entry) => now - entry.at < rateWindowMs);
  }
}
