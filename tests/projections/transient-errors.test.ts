import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { isTransientDatabaseError } from '../../src/projections/runtime/transient-errors.js';

function coded(code: string, message = 'failed'): Error {
  return Object.assign(new Error(message), { code });
}

function databaseError(code: string, message: string): pg.DatabaseError {
  const error = new pg.DatabaseError(message, 0, 'error');
  error.code = code;
  return error;
}

describe('isTransientDatabaseError', () => {
  it.each([
    ['40001', 'could not serialize access due to concurrent update'],
    ['40P01', 'deadlock detected'],
    ['53300', 'sorry, too many clients already'],
    ['53200', 'out of shared memory'],
    ['57P01', 'terminating connection due to administrator command'],
    ['08006', 'connection failure'],
  ])('given a PostgreSQL error %s (%s), then it passes', (code, message) => {
    expect(isTransientDatabaseError(databaseError(code, message))).toBe(true);
  });

  it.each([
    ['23505', 'duplicate key value violates unique constraint'],
    ['42P01', 'relation does not exist'],
    ['22P02', 'invalid input syntax for type uuid'],
    ['XX000', 'internal error'],
    ['EV001', 'the event store refused the append'],
    // Of the passing classes, but met again on every try of the same statement.
    ['57014', 'canceling statement due to statement timeout'],
    ['08P01', 'bind message has 1664 parameter formats but 0 parameters'],
    ['53400', 'configuration limit exceeded'],
  ])('given a PostgreSQL error %s (%s), then it is the work\'s own', (code, message) => {
    expect(isTransientDatabaseError(databaseError(code, message))).toBe(false);
  });

  it.each(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'])('given a socket error %s, then it passes', (code) => {
    expect(isTransientDatabaseError(coded(code, `connect ${code} 127.0.0.1:5432`))).toBe(true);
  });

  it.each([
    'Connection terminated unexpectedly',
    'Connection terminated',
    'Connection terminated due to connection timeout',
    'Client has encountered a connection error and is not queryable',
    'timeout exceeded when trying to connect',
  ])('given node-postgres\'s code-less "%s", then it passes', (message) => {
    expect(isTransientDatabaseError(new Error(message))).toBe(true);
  });

  it('given a transient error as the cause of another, then it passes', () => {
    expect(isTransientDatabaseError(new Error('could not project', { cause: databaseError('40P01', 'deadlock detected') }))).toBe(true);
  });

  it('given a handler\'s own error, a non-error value or nothing, then it is not transient', () => {
    expect(isTransientDatabaseError(new Error('cannot count event 42'))).toBe(false);
    expect(isTransientDatabaseError(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBe(false);
    expect(isTransientDatabaseError('40P01')).toBe(false);
    expect(isTransientDatabaseError({ code: '40P01' })).toBe(false);
    expect(isTransientDatabaseError(undefined)).toBe(false);
  });
});
