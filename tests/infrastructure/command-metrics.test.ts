import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { commandMetrics } from '../../src/infrastructure/metrics/command-metrics.js';

describe('command metrics', () => {
  it('counts commands by aggregate, type and outcome, and times them and their appends', async () => {
    const registry = new Registry();
    const observe = commandMetrics(registry);
    observe({ category: 'booking', command: 'RequestBooking', outcome: 'accepted', seconds: 0.004, appendSeconds: 0.001 });
    observe({ category: 'booking', command: 'RequestBooking', outcome: 'conflict-retried', seconds: 0.002 });
    observe({ category: 'listingCalendar', command: 'HoldDates', outcome: 'rejected', seconds: 0.003 });

    const text = await registry.metrics();
    expect(text).toContain('commands_total{aggregate="booking",command="RequestBooking",outcome="accepted"} 1');
    expect(text).toContain('commands_total{aggregate="booking",command="RequestBooking",outcome="conflict-retried"} 1');
    expect(text).toContain('commands_total{aggregate="listingCalendar",command="HoldDates",outcome="rejected"} 1');
    expect(text).toContain('event_append_duration_seconds_count{aggregate="booking"} 1');
    expect(text).toContain('command_duration_seconds_count{aggregate="booking",command="RequestBooking"} 1');
  });
});
