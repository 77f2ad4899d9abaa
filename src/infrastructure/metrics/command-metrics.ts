import { Counter, Histogram, type Registry } from 'prom-client';
import type { CommandObserver } from '../../application/command-handling/handle-command.js';

/**
 * Commands by aggregate, type and outcome (accepted, rejected by a rule, conflict retried,
 * conflict returned, …), how long they take, and how long their appends take.
 */
export function commandMetrics(registry: Registry): CommandObserver {
  const commands = new Counter({
    name: 'commands_total',
    help: 'Commands handled, by aggregate, command type and outcome',
    labelNames: ['aggregate', 'command', 'outcome'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'command_duration_seconds',
    help: 'Time to handle a command, reads and retries included',
    labelNames: ['aggregate', 'command'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const append = new Histogram({
    name: 'event_append_duration_seconds',
    help: 'Time of one successful append to the event store',
    labelNames: ['aggregate'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [registry],
  });
  return ({ category, command, outcome, seconds, appendSeconds }) => {
    commands.inc({ aggregate: category, command, outcome });
    if (outcome !== 'conflict-retried') duration.observe({ aggregate: category, command }, seconds);
    if (appendSeconds !== undefined) append.observe({ aggregate: category }, appendSeconds);
  };
}
