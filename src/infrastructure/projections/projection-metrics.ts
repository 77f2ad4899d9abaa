import { Gauge, type Registry } from 'prom-client';
import { parsePosition } from '../../application/ports/position.js';
import type { CheckpointLag } from '../../projections/runtime/projection-checkpoints.queries.js';
import type { ProjectionStatus, ProjectorState } from '../../projections/runtime/projector-metrics.js';

const states: readonly ProjectorState[] = ['standby', 'starting', 'running', 'rebuilding', 'failed', 'stopped'];
const labelNames = ['projection', 'generation'] as const;

/** One generation's lag in events, as `listCheckpointsWithLag` gives it; `lag` null where it cannot be counted. */
export type ProjectionLag = { readonly name: string; readonly generation: number; readonly lag: CheckpointLag | null };

export type ProjectionMetricsOptions = {
  /**
   * Counts, at scrape time, the events in the log after each generation's checkpoint (with
   * `listCheckpointsWithLag`, capped). Unset, `projection_lag_events` has no series.
   */
  readonly lagInEvents?: () => Promise<readonly ProjectionLag[]>;
};

/**
 * Publishes `runtime.status()` on a Prometheus registry, read at scrape time: the runtime (or the
 * thread it runs on) keeps plain numbers and knows nothing of prom-client.
 */
export function registerProjectionMetrics(registry: Registry, runtime: { status(): ProjectionStatus[] }, options: ProjectionMetricsOptions = {}): void {
  const gauge = (name: string, help: string, value: (status: ProjectionStatus) => number | null) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        for (const status of runtime.status()) {
          const measured = value(status);
          if (measured !== null) this.set({ projection: status.name, generation: String(status.generation) }, measured);
        }
      },
    });
  gauge('projection_events_processed', 'Events this process has committed for the projection since taking its lock', (s) => s.eventsProcessed);
  gauge('projection_events_per_second', 'Events committed per second over the last ten seconds', (s) => s.eventsPerSecond);
  gauge('projection_last_batch_duration_seconds', 'Duration of the last committed batch', (s) =>
    s.lastBatchDurationMs === null ? null : s.lastBatchDurationMs / 1000,
  );
  gauge('projection_lag_seconds', "From the store recording the last committed event to its batch's commit", (s) =>
    s.lagMs === null ? null : s.lagMs / 1000,
  );
  // The commit part of the position: it only rises as the projection reads on, in either store
  // (a transaction id in PostgreSQL, a log offset in EventStoreDB). Compare it across
  // projections, or watch it move; its distance to another says nothing of events between.
  gauge('projection_checkpoint_position', 'Commit part of the position of the last committed checkpoint', (s) => {
    const position = parsePosition(s.position);
    return position ? Number(position.commit) : null;
  });
  const { lagInEvents } = options;
  if (lagInEvents) {
    new Gauge({
      name: 'projection_lag_events',
      help: 'Events in the log after the checkpoint (counted up to a cap; none when the log is in EventStoreDB)',
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        let lags: readonly ProjectionLag[];
        try {
          lags = await lagInEvents();
        } catch {
          // The database unreachable for a moment must not fail the whole scrape.
          return;
        }
        for (const status of runtime.status()) {
          const lag = lags.find((row) => row.name === status.name && row.generation === status.generation)?.lag;
          if (lag) this.set({ projection: status.name, generation: String(status.generation) }, lag.events);
        }
      },
    });
  }
  gauge('projection_failed_swap_tries', 'Tries in a row in which a rebuild found the live generation busy or ahead and did not swap in', (s) => s.failedSwapTries);
  new Gauge({
    name: 'projection_state',
    help: 'The state of each projection generation in this process (1 for the current state)',
    labelNames: [...labelNames, 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const status of runtime.status()) {
        for (const state of states) {
          this.set({ projection: status.name, generation: String(status.generation), state }, state === status.state ? 1 : 0);
        }
      }
    },
  });
}
