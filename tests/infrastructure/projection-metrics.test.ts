import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerProjectionMetrics, type ProjectionLag } from '../../src/infrastructure/projections/projection-metrics.js';
import type { ProjectionStatus } from '../../src/projections/runtime/projector-metrics.js';

function status(name: string, generation: number, position: string): ProjectionStatus {
  return {
    name,
    generation,
    version: 1,
    state: 'running',
    position,
    eventsProcessed: 10,
    batchesCommitted: 2,
    lastBatchSize: 5,
    lastBatchDurationMs: 20,
    eventsPerSecond: 1,
    lastEventRecordedAt: new Date('2025-01-01T00:00:00.000Z'),
    lastProjectedAt: new Date('2025-01-01T00:00:00.250Z'),
    lagMs: 250,
    failedSwapTries: 0,
    lastError: null,
  };
}

describe('projection metrics', () => {
  it('publishes each generation\'s checkpoint position and its lag in events, as they change', async () => {
    // Given a projection at one checkpoint with 7 events after it in the log
    let statuses = [status('bookings', 3, '812.40')];
    let lags: ProjectionLag[] = [{ name: 'bookings', generation: 3, lag: { events: 7, capped: false, oldestUnprocessedAt: null } }];
    const registry = new Registry();
    registerProjectionMetrics(registry, { status: () => statuses }, { lagInEvents: async () => lags });

    // Then both are on the scrape, under the labels of the other projection metrics
    let text = await registry.metrics();
    expect(text).toContain('projection_checkpoint_position{projection="bookings",generation="3"} 812\n');
    expect(text).toContain('projection_lag_events{projection="bookings",generation="3"} 7\n');
    expect(text).toContain('projection_lag_seconds{projection="bookings",generation="3"} 0.25\n');

    // When it catches up
    statuses = [status('bookings', 3, '820.47')];
    lags = [{ name: 'bookings', generation: 3, lag: { events: 0, capped: false, oldestUnprocessedAt: null } }];

    // Then the next scrape shows the new checkpoint and no lag
    text = await registry.metrics();
    expect(text).toContain('projection_checkpoint_position{projection="bookings",generation="3"} 820\n');
    expect(text).toContain('projection_lag_events{projection="bookings",generation="3"} 0\n');
  });

  it('leaves the lag in events out where it cannot be counted (the log in EventStoreDB)', async () => {
    const registry = new Registry();
    registerProjectionMetrics(registry, { status: () => [status('bookings', 1, '5.5')] }, { lagInEvents: async () => [{ name: 'bookings', generation: 1, lag: null }] });
    const text = await registry.metrics();
    expect(text).toContain('projection_checkpoint_position{projection="bookings",generation="1"} 5\n');
    expect(text).not.toContain('projection_lag_events{');
  });
});
