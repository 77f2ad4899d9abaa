import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerEventStoreMetrics } from '../../src/infrastructure/metrics/event-store-metrics.js';
import type { HorizonHolder } from '../../src/infrastructure/pg-event-store/pg-event-store.js';

const holder = (ageMs: number): HorizonHolder => ({ pid: 42, xid: 1234n, ageMs, database: 'bookable', applicationName: 'psql', state: 'idle in transaction', query: 'BEGIN' });

describe('event store metrics', () => {
  it('publishes the age of the transaction holding back the log at each scrape, 0 when none', async () => {
    // Given a store whose oldest in-flight transaction changes between scrapes
    let oldest: HorizonHolder | undefined;
    const registry = new Registry();
    registerEventStoreMetrics(registry, { oldestInFlightTransaction: async () => oldest });

    // Then with none open it reads 0
    expect(await registry.metrics()).toContain('event_store_oldest_transaction_age_seconds 0\n');

    // When one has been open for 2.5 s, it reads its age
    oldest = holder(2500);
    expect(await registry.metrics()).toContain('event_store_oldest_transaction_age_seconds 2.5\n');

    // And once it ends, 0 again
    oldest = undefined;
    expect(await registry.metrics()).toContain('event_store_oldest_transaction_age_seconds 0\n');
  });

  it('does not fail the scrape when the store cannot be asked', async () => {
    const registry = new Registry();
    registerEventStoreMetrics(registry, {
      oldestInFlightTransaction: async () => {
        throw new Error('The event store is closed');
      },
    });
    expect(await registry.metrics()).toContain('# TYPE event_store_oldest_transaction_age_seconds gauge');
  });
});
