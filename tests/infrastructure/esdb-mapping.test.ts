import { StreamDeletedError as EsdbStreamDeletedError, UnavailableError, WrongExpectedVersionError, type JSONRecordedEvent } from '@eventstore/db-client';
import { describe, expect, it } from 'vitest';
import { ConcurrencyError, StreamDeletedError, type RecordedEvent } from '../../src/application/ports/event-store.js';
import { START } from '../../src/application/ports/position.js';
import {
  escapeRegex,
  fromEsdbCurrentRevision,
  fromEsdbEvent,
  fromEsdbRevision,
  isAfter,
  matchesClientSide,
  toConcurrencyError,
  toEsdbEvent,
  toEsdbExpectedRevision,
  toReadPosition,
  toServerFilter,
  toStreamError,
} from '../../src/infrastructure/esdb-event-store/esdb-mapping.js';

const id = '8a8b4a9e-6c1f-4c57-9d4c-0b7f3a1e2d55';

const esdbEvent = (overrides: Partial<JSONRecordedEvent> = {}): JSONRecordedEvent => ({
  streamId: 'booking-1',
  id,
  isJson: true,
  revision: 2n,
  type: 'BookingRequested',
  created: new Date('2025-01-02T03:04:05Z'),
  data: { bookingId: '1' },
  metadata: { actorId: 'u1' },
  position: { commit: 20n, prepare: 10n },
  ...overrides,
});

const recorded = (streamId: string, type: string): RecordedEvent => ({
  id,
  type,
  streamId,
  data: {},
  metadata: {},
  revision: 0,
  position: START,
  recordedAt: new Date(0),
});

/** .NET and JavaScript agree on the plain regexes used here; this checks what the server would match. */
const serverMatches = (filter: ReturnType<typeof toServerFilter>, value: string): boolean =>
  'regex' in filter ? new RegExp(filter.regex).test(value) : filter.prefixes.some((p) => value.startsWith(p));

describe('EventStoreDB mapping', () => {
  it('maps expected revisions', () => {
    expect(toEsdbExpectedRevision(3)).toBe(3n);
    expect(toEsdbExpectedRevision(0)).toBe(0n);
    expect(toEsdbExpectedRevision('no_stream')).toBe('no_stream');
    expect(toEsdbExpectedRevision('stream_exists')).toBe('stream_exists');
    expect(toEsdbExpectedRevision('any')).toBe('any');
    expect(() => toEsdbExpectedRevision(-1)).toThrow(RangeError);
    expect(() => toEsdbExpectedRevision(1.5)).toThrow(RangeError);
  });

  it('maps revisions back to numbers, refusing what a number cannot hold', () => {
    expect(fromEsdbRevision(7n)).toBe(7);
    expect(() => fromEsdbRevision(2n ** 53n)).toThrow(RangeError);
    expect(fromEsdbCurrentRevision('no_stream')).toBe('no_stream');
    expect(fromEsdbCurrentRevision(-1n)).toBe('no_stream');
    expect(fromEsdbCurrentRevision(4n)).toBe(4);
    expect(fromEsdbCurrentRevision(undefined)).toBeUndefined();
  });

  it('turns a wrong expected version into a ConcurrencyError with what was expected and found', () => {
    const esdbError = new WrongExpectedVersionError(undefined, { streamName: 'booking-1', expected: 1n, current: 4n });

    const error = toConcurrencyError('booking-1', 1, esdbError.actualVersion);

    expect(error).toBeInstanceOf(ConcurrencyError);
    expect(error).toMatchObject({ streamId: 'booking-1', expected: 1, actual: 4 });
    expect(toConcurrencyError('booking-1', 'stream_exists', 'no_stream').actual).toBe('no_stream');
  });

  it("turns the client's StreamDeletedError into the port's, a domain refusal naming the stream; other errors pass as they are", () => {
    const deleted = toStreamError('booking-1', EsdbStreamDeletedError.fromStreamName('booking-1'));
    const unavailable = new UnavailableError();

    expect(deleted).toBeInstanceOf(StreamDeletedError);
    expect(deleted).toMatchObject({ streamId: 'booking-1', code: 'stream-deleted', message: 'Stream booking-1 was deleted for good' });
    expect(toStreamError('booking-1', unavailable)).toBe(unavailable);
  });

  it('maps positions, reading $all from the start or from the checkpoint itself', () => {
    expect(toReadPosition(undefined)).toBe('start');
    expect(toReadPosition(START)).toBe('start');
    expect(toReadPosition({ commit: 5n, prepare: 4n })).toEqual({ commit: 5n, prepare: 4n });
  });

  it('skips the event at `after`, which EventStoreDB includes', () => {
    const after = { commit: 5n, prepare: 4n };
    expect(isAfter({ commit: 5n, prepare: 4n }, after)).toBe(false);
    expect(isAfter({ commit: 5n, prepare: 3n }, after)).toBe(false);
    expect(isAfter({ commit: 5n, prepare: 5n }, after)).toBe(true);
    expect(isAfter({ commit: 1n, prepare: 1n }, undefined)).toBe(true);
  });

  it('writes JSON events with our id, data and metadata', () => {
    const data = toEsdbEvent({ id, type: 'BookingRequested', data: { a: 1 }, metadata: { actorId: 'u1' } });

    expect(data).toMatchObject({ id, type: 'BookingRequested', contentType: 'application/json', data: { a: 1 } });
    expect(data.metadata).toEqual({ actorId: 'u1' });
  });

  it('reads recorded events back', () => {
    expect(fromEsdbEvent(esdbEvent())).toEqual({
      id,
      type: 'BookingRequested',
      streamId: 'booking-1',
      revision: 2,
      data: { bookingId: '1' },
      metadata: { actorId: 'u1' },
      position: { commit: 20n, prepare: 10n },
      recordedAt: new Date('2025-01-02T03:04:05Z'),
    });
    expect(fromEsdbEvent(esdbEvent({ metadata: undefined })).metadata).toEqual({});
    expect(() => fromEsdbEvent(esdbEvent({ data: ['not', 'an', 'object'] }))).toThrow(/not a JSON object/);
    expect(() => fromEsdbEvent(esdbEvent({ position: undefined }))).toThrow(/22\.6/);
  });

  it('refuses events without a real position, as servers before 22.6 send them from stream reads', () => {
    // The client never leaves a position out: such a server's -1 arrives as 2^64-1, an unset one
    // as 0. No event of ours sits at 0/0: that is START, before every event, and a log begins
    // with the server's own records.
    const unset = 2n ** 64n - 1n;

    expect(() => fromEsdbEvent(esdbEvent({ position: { commit: unset, prepare: unset } }))).toThrow(/22\.6/);
    expect(() => fromEsdbEvent(esdbEvent({ position: { commit: unset, prepare: 10n } }))).toThrow(/22\.6/);
    expect(() => fromEsdbEvent(esdbEvent({ position: { commit: 0n, prepare: 0n } }))).toThrow(/22\.6/);
    expect(fromEsdbEvent(esdbEvent({ position: { commit: 0n, prepare: 1n } })).position).toEqual({ commit: 0n, prepare: 1n });
  });

  it('excludes system events on the server and on the client', () => {
    const filter = toServerFilter(undefined);

    expect(filter.filterOn).toBe('eventType');
    expect(serverMatches(filter, '$metadata')).toBe(false);
    expect(serverMatches(filter, 'BookingRequested')).toBe(true);
    expect(matchesClientSide(recorded('$stats-1', 'StatsCollected'), undefined)).toBe(false);
    expect(matchesClientSide(recorded('booking-1', '$>'), undefined)).toBe(false);
    expect(matchesClientSide(recorded('booking-1', 'BookingRequested'), undefined)).toBe(true);
  });

  it('filters event types exactly, escaping regex characters', () => {
    const filter = toServerFilter({ eventTypes: ['BookingRequested', 'a.b'] });

    expect(filter.filterOn).toBe('eventType');
    expect(serverMatches(filter, 'BookingRequested')).toBe(true);
    expect(serverMatches(filter, 'BookingRequestedV2')).toBe(false);
    expect(serverMatches(filter, 'a.b')).toBe(true);
    expect(serverMatches(filter, 'axb')).toBe(false);
    expect(serverMatches(toServerFilter({ eventTypes: [] }), 'BookingRequested')).toBe(false);
    expect(escapeRegex('a+(b)|$')).toBe('a\\+\\(b\\)\\|\\$');
  });

  it('filters stream prefixes on the server, and both lists on the client', () => {
    const filter = toServerFilter({ streamPrefixes: ['booking-', 'payment-'] });

    expect(filter).toMatchObject({ filterOn: 'streamName', prefixes: ['booking-', 'payment-'] });
    expect(serverMatches(toServerFilter({ streamPrefixes: [] }), 'booking-1')).toBe(false);
    const both = { eventTypes: ['BookingRequested'], streamPrefixes: ['booking-'] };
    expect(toServerFilter(both).filterOn).toBe('eventType');
    expect(matchesClientSide(recorded('booking-1', 'BookingRequested'), both)).toBe(true);
    expect(matchesClientSide(recorded('listing-1', 'BookingRequested'), both)).toBe(false);
    expect(matchesClientSide(recorded('booking-1', 'BookingPaid'), both)).toBe(false);
  });
});
