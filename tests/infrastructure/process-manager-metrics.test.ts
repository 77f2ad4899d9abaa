import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { processManagerMetrics } from '../../src/infrastructure/metrics/process-manager-metrics.js';

describe('process manager metrics', () => {
  it('counts errors by process and outcome, and reads how long a process has been failing without progress', async () => {
    let now = 1_000_000;
    const registry = new Registry();
    const observe = processManagerMetrics(registry, () => now);
    const payment = observe('payment');
    observe('hold-expiry');
    const read = async (name: string, labels: Record<string, string>) => {
      const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
      return values.find((value) => Object.entries(labels).every(([label, wanted]) => value.labels[label] === wanted))?.value;
    };
    const stalled = (process: string) => read('process_manager_stalled_seconds', { process });

    // Given both processes running, neither failing: no stall
    expect(await stalled('payment')).toBe(0);
    expect(await stalled('hold-expiry')).toBe(0);

    // When the payment process fails an event at once and again 90 s later, and gives up a step
    payment.error(true);
    payment.attempt(false);
    now += 90_000;
    payment.error(true);
    payment.attempt(false);
    payment.error(false);
    now += 30_000;

    // Then it has been stalled since its first failure, and its errors are counted by outcome
    expect(await stalled('payment')).toBe(120);
    expect(await stalled('hold-expiry')).toBe(0);
    expect(await read('process_manager_errors_total', { process: 'payment', outcome: 'retried' })).toBe(2);
    expect(await read('process_manager_errors_total', { process: 'payment', outcome: 'given_up' })).toBe(1);

    // When it then handles the event, the stall is over; a new failure starts a new one
    payment.attempt(true);
    expect(await stalled('payment')).toBe(0);
    payment.attempt(false);
    now += 5_000;
    expect(await stalled('payment')).toBe(5);
  });
});
