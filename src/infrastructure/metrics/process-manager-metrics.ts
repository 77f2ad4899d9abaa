import { Counter, Gauge, type Registry } from 'prom-client';

export type ProcessManagerName = 'payment' | 'hold-expiry' | 'refund-reconciliation';

/** What one process manager reports, as its `onError` and `onAttempt` callbacks tell it. */
export type ProcessManagerObserver = {
  /** An error it reported: one it will retry, or one it gave up on. */
  error(retried: boolean): void;
  /** An attempt at what everything after waits on (an event, following the log, a sweep round) failed or succeeded. */
  attempt(succeeded: boolean): void;
};

/**
 * `process_manager_errors_total` by process and outcome, and `process_manager_stalled_seconds`:
 * how long each process has been failing without an attempt succeeding (0 once one does), read at
 * scrape time. A process retrying the same event for an hour logs a warning now and then; this is
 * what an operator alerts on. Not a readiness failure: the APIs serve fine meanwhile.
 */
export function processManagerMetrics(registry: Registry, now: () => number = Date.now): (process: ProcessManagerName) => ProcessManagerObserver {
  const failingSince = new Map<ProcessManagerName, number | undefined>();
  const errors = new Counter({
    name: 'process_manager_errors_total',
    help: 'Errors of the process managers, by process and outcome (retried, given_up)',
    labelNames: ['process', 'outcome'],
    registers: [registry],
  });
  new Gauge({
    name: 'process_manager_stalled_seconds',
    help: 'How long a process manager has been failing without progress (0 when its last attempt succeeded)',
    labelNames: ['process'],
    registers: [registry],
    collect() {
      for (const [process, since] of failingSince) this.set({ process }, since === undefined ? 0 : (now() - since) / 1000);
    },
  });
  return (process) => {
    failingSince.set(process, undefined);
    return {
      error: (retried) => errors.inc({ process, outcome: retried ? 'retried' : 'given_up' }),
      attempt(succeeded) {
        if (succeeded) failingSince.set(process, undefined);
        else failingSince.set(process, failingSince.get(process) ?? now());
      },
    };
  };
}
