import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPosition } from '../../src/application/ports/position.js';
import { loadConfig } from '../../src/infrastructure/config/config.js';
import { createLogger } from '../../src/infrastructure/logging/logger.js';
import { registerProjectionMetrics } from '../../src/infrastructure/projections/projection-metrics.js';
import { startProjectors } from '../../src/infrastructure/projections/projector-runner.js';
import { eventCountsProjection } from '../../src/projections/event-counts/event-counts.projection.js';
import { activeCheckpoint, appendEvents, createHarness, eventually, type Harness } from './support/runtime-harness.js';

let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness.close();
});

describe('projector role', () => {
  it('runs the read models with the configured settings and publishes their status to Prometheus', async () => {
    const runtime = startProjectors({
      config: loadConfig({ PROJECTION_LOCK_RETRY_MS: '100', PROJECTION_BATCH_MAX_WAIT_MS: '10' }),
      connectionString: harness.url,
      pool: harness.pool,
      eventStore: harness.store,
      logger: createLogger({ level: 'silent', pretty: false }),
      projections: [eventCountsProjection({ name: 'role', eventTypes: ['Counted'] })],
    });
    const registry = new Registry();
    registerProjectionMetrics(registry, runtime);
    try {
      const { last } = await appendEvents(harness.store, { streams: 2, perStream: 10, prefix: 'role' });
      await eventually(async () => (await activeCheckpoint(harness.db, 'role'))?.position === formatPosition(last), 10_000, 'the projection');
      await eventually(async () => runtime.status()[0]?.eventsProcessed === 20, 5000, 'the status');
      const text = await registry.metrics();
      expect(text).toContain('projection_events_processed{projection="role",generation="1"} 20');
      expect(text).toContain('projection_state{projection="role",generation="1",state="running"} 1');
      expect(text).toMatch(/projection_lag_seconds\{projection="role",generation="1"\} \d/);
      expect(text).toContain('projection_failed_swap_tries{projection="role",generation="1"} 0');
    } finally {
      await runtime.stop();
    }
  });
});
