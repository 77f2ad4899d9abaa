/**
 * SQLSTATE classes that speak of the moment, not of the statement, so that the same work may well
 * go through when tried again: 08 the connection failed; 40 the transaction was rolled back
 * (serialization failure, deadlock); 53 the server ran short (connections, memory, disk); 57 an
 * operator or the server stepped in (a cancel, an admin shutdown).
 */
const transientClasses: ReadonlySet<string> = new Set(['08', '40', '53', '57']);

/**
 * Codes of those classes that a statement meets again every time it is tried: a protocol
 * violation is a statement the driver cannot send (too many parameters), a configuration limit
 * one the server will not take, and a statement timeout one too slow for the limit an operator
 * set. Retried without end, the projection would never report them; they count as the work's own.
 */
const recurringCodes: ReadonlySet<string> = new Set(['08P01', '53400', '57014']);

/** node's codes for a socket that would not open or broke off. */
const socketCodes: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * node-postgres and its pool report a lost or unobtainable connection with a bare `Error`, no
 * code: these are their messages (pg 8: `Connection terminated unexpectedly`, `Connection
 * terminated due to connection timeout`, ...).
 */
const connectionMessages: readonly RegExp[] = [
  /^Connection terminated/,
  /^Client has encountered a connection error and is not queryable$/,
  /^Client was closed and is not queryable$/,
  /^timeout exceeded when trying to connect$/,
];

const sqlstateShape = /^[0-9A-Z]{5}$/;

/**
 * Whether `error`, or an error it was caused by, is a database error that passes: one a retry
 * may get past however many times it has happened, because it says nothing about the work tried.
 * Every other error (a constraint, a syntax error, a bug in a handler) is taken as the work's own.
 */
export function isTransientDatabaseError(error: unknown): boolean {
  // A few links of `cause` at most: enough for a wrapped driver error, and no loop on a cycle.
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth += 1) {
    if (isTransientItself(current)) return true;
    current = current.cause;
  }
  return false;
}

function isTransientItself(error: Error): boolean {
  const code = 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  // Socket codes first: `EPIPE` has a SQLSTATE's shape.
  if (code !== undefined && socketCodes.has(code)) return true;
  if (code !== undefined && sqlstateShape.test(code)) return transientClasses.has(code.slice(0, 2)) && !recurringCodes.has(code);
  return connectionMessages.some((message) => message.test(error.message));
}

/** PostgreSQL's `lock_not_available`: a lock not granted within `lock_timeout`, or at once under NOWAIT. */
const lockNotAvailable = '55P03';

export function isLockUnavailable(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === lockNotAvailable;
}
