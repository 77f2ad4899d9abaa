import { Gauge, type Registry } from 'prom-client';
import type { PgEventStore } from '../pg-event-store/pg-event-store.js';

/**
 * `event_store_oldest_transaction_age_seconds`: how long the transaction holding back the
 * PostgreSQL log's horizon has been open, asked of the store at each scrape (the same query as
 * its stall warning); 0 when none is. Events committed after it reach no subscriber until it
 * ends, so a value that keeps growing is every projection and process manager standing still.
 */
export function registerEventStoreMetrics(registry: Registry, store: Pick<PgEventStore, 'oldestInFlightTransaction'>): void {
  new Gauge({
    name: 'event_store_oldest_transaction_age_seconds',
    help: 'Age of the oldest in-flight transaction holding back the event log (0 when none)',
    registers: [registry],
    async collect() {
      try {
        const holder = await store.oldestInFlightTransaction();
        this.set(holder ? holder.ageMs / 1000 : 0);
      } catch {
        // A diagnostic must not fail the scrape (the store closing at shutdown): the last value stands.
      }
    },
  });
}
