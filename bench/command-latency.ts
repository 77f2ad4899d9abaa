// Command latency against stream length: the listing calendar and the doctor schedule grow for
// ever, so a command on a stream of 10,000 events must cost about what it costs on 10.
// `npm run bench:command-latency`; one line per figure. Set DATABASE_URL to use a running server.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createCommandHandlers, type CommandHandlers } from '../src/application/command-handlers.js';
import type { CommandOptions } from '../src/application/command-handling/handle-command.js';
import type { NewEvent } from '../src/application/ports/event-store.js';
import { addDays } from '../src/domain/shared/calendar-date.js';
import { PgEventStore } from '../src/infrastructure/pg-event-store/pg-event-store.js';
import { createPool, migrateToLatest } from '../src/infrastructure/postgres/database.js';
import { PersonalDataVault } from '../src/application/privacy/personal-data-vault.js';
import { MemorySubjectKeyStore } from '../src/infrastructure/privacy/memory-subject-key-store.js';
import { benchDatabase, percentile } from './support/bench-database.js';

const clock = { now: () => new Date('2030-01-01T08:00:00Z') };
const samples = 300;
const request = (): CommandOptions => ({
  commandId: randomUUID(),
  context: { actor: { id: 'bench', roles: ['CONSUMER'] }, requestId: 'bench', correlationId: 'bench', causationId: 'bench' },
});
const metadata = { actorId: 'bench', actorRoles: [], correlationId: 'bench', causationId: 'bench', requestId: 'bench', occurredAt: '2030-01-01T08:00:00Z', schemaVersion: 1 };

/** `count` events of held-then-released dates, far in the future, so the state stays small as in life. */
function calendarHistory(listingId: string, count: number): NewEvent[] {
  return Array.from({ length: count }, (_, i) => {
    const bookingId = `old-${Math.floor(i / 2)}`;
    const startDate = addDays('2031-01-01', Math.floor(i / 2) % 300);
    const range = { listingId, bookingId, startDate, endDate: addDays(startDate, 1) };
    return i % 2 === 0
      ? { id: randomUUID(), type: 'DatesHeld', data: { ...range, holdExpiresAt: '2030-01-01T08:15:00Z', heldOn: '2030-01-01' }, metadata }
      : { id: randomUUID(), type: 'DatesReleased', data: { ...range, reason: 'cancelled' }, metadata };
  });
}

function scheduleHistory(doctorId: string, count: number): NewEvent[] {
  const mornings = [{ from: '08:00', to: '18:00' }];
  const weeklyHours = { mon: mornings, tue: mornings, wed: mornings, thu: mornings, fri: mornings, sat: mornings, sun: mornings };
  const set: NewEvent = {
    id: randomUUID(),
    type: 'ScheduleSet',
    data: { doctorId, timeZone: 'UTC', slotMinutes: 30, weeklyHours, daysOff: [], affectedAppointmentIds: [], setAt: '2030-01-01T00:00:00Z' },
    metadata,
  };
  return [
    set,
    ...Array.from({ length: count - 1 }, (_, i): NewEvent => {
      const appointmentId = `old-${Math.floor(i / 2)}`;
      const start = new Date(Date.parse('2031-01-01T08:00:00Z') + (Math.floor(i / 2) % 20) * 30 * 60_000).toISOString();
      const slot = { doctorId, appointmentId, start, end: new Date(Date.parse(start) + 30 * 60_000).toISOString() };
      return i % 2 === 0
        ? { id: randomUUID(), type: 'SlotBooked', data: { ...slot, patientId: 'p', bookedAt: '2030-01-01T00:00:00Z' }, metadata }
        : { id: randomUUID(), type: 'SlotReleased', data: slot, metadata };
    }),
  ];
}

/** One hold-and-release (two commands) on the calendar per sample, taking `listingIds` in turn. */
async function calendarRound(handlers: () => CommandHandlers, listingIds: readonly string[]): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const side = handlers();
    const listingId = listingIds[i % listingIds.length] ?? '';
    const bookingId = randomUUID();
    const startDate = addDays('2030-02-01', i % 200);
    const started = performance.now();
    await side.listingCalendar.handle(
      `listingCalendar-${listingId}`,
      { type: 'HoldDates', data: { listingId, bookingId, startDate, endDate: addDays(startDate, 1), holdExpiresAt: '2030-01-01T08:15:00Z', now: clock.now().toISOString(), timeZone: 'UTC' } },
      request(),
    );
    await side.listingCalendar.handle(
      `listingCalendar-${listingId}`,
      { type: 'ReleaseDates', data: { listingId, bookingId, reason: 'cancelled', now: clock.now().toISOString() } },
      request(),
    );
    times.push(performance.now() - started);
  }
  return times;
}

async function scheduleRound(handlers: () => CommandHandlers, doctorIds: readonly string[]): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const side = handlers();
    const doctorId = doctorIds[i % doctorIds.length] ?? '';
    const appointmentId = randomUUID();
    const start = new Date(Date.parse('2030-02-01T08:00:00Z') + (i % 20) * 30 * 60_000).toISOString();
    const started = performance.now();
    await side.doctorSchedule.handle(`doctorSchedule-${doctorId}`, { type: 'BookSlot', data: { appointmentId, patientId: 'p', start, now: clock.now().toISOString() } }, request());
    await side.doctorSchedule.handle(`doctorSchedule-${doctorId}`, { type: 'ReleaseSlot', data: { appointmentId } }, request());
    times.push(performance.now() - started);
  }
  return times;
}

/** Loads a stream into the handlers' cache of folded states. */
async function readOnce(handlers: CommandHandlers, streamId: string): Promise<void> {
  if (streamId.startsWith('listingCalendar-')) await handlers.listingCalendar.read(streamId);
  else await handlers.doctorSchedule.read(streamId);
}

const database = await benchDatabase('command-latency');
const pool = createPool(database.url, 4);
try {
  await migrateToLatest(pool);
  const store = new PgEventStore(pool);
  // The calendar and schedule carry no personal data; the vault is there because handlers need one.
  const personalData = new PersonalDataVault(new MemorySubjectKeyStore());
  const warm = createCommandHandlers({ eventStore: store, clock, personalData });
  const cases = [
    { name: 'listing calendar', history: calendarHistory, round: calendarRound, streamId: (id: string) => `listingCalendar-${id}` },
    { name: 'doctor schedule', history: scheduleHistory, round: scheduleRound, streamId: (id: string) => `doctorSchedule-${id}` },
  ];
  for (const { name, history, round, streamId } of cases) {
    // A discarded round on a stream of its own, so that neither length is measured on code the
    // JIT has not compiled yet.
    const warmUp = randomUUID();
    await store.appendToStream(streamId(warmUp), history(warmUp, 10));
    await round(() => warm, [warmUp]);
    const median: Record<string, number> = {};
    const coldMedian: Record<string, number> = {};
    /**
     * Streams holding `length` events each, so that every sample starts at the length it is
     * labelled with: one stream per sample at 10 (a round adds two events to each, not 600 to
     * one), one at 10,000 (which the round takes to 10,600).
     */
    const streamsOf = async (length: number) => {
      const ids = Array.from({ length: length === 10 ? samples : 1 }, () => randomUUID());
      for (const id of ids) {
        const events = history(id, length);
        for (let i = 0; i < events.length; i += 1_000) await store.appendToStream(streamId(id), events.slice(i, i + 1_000));
      }
      return ids;
    };
    for (const length of [10, 10_000]) {
      // The cached path first: 300 cold loads of 10,000 events leave the heap full of garbage, and
      // collecting it in the middle of the cached rounds measured the collector, not the command.
      const hotStreams = await streamsOf(length);
      // Read once beforehand, as a running process has: the cached path is timed, not each stream's first load.
      for (const id of hotStreams) await readOnce(warm, streamId(id));
      const hot = await round(() => warm, hotStreams);
      const cold = await round(() => createCommandHandlers({ eventStore: store, clock, personalData }), await streamsOf(length));
      median[length] = percentile(hot, 50);
      coldMedian[length] = percentile(cold, 50);
      console.log(
        `${name} @ ${length} events: hold+release p50 ${percentile(hot, 50).toFixed(2)} ms, p99 ${percentile(hot, 99).toFixed(2)} ms (cached state); ` +
          `cold load p50 ${percentile(cold, 50).toFixed(2)} ms`,
      );
    }
    // The target is the service's path: a process keeps each stream's state once it has read it.
    // Without it (the first command after a start, or a stream evicted from the cache) the whole
    // stream is read, which the cold ratio shows.
    console.log(`${name}: latency ratio 10,000 / 10 events = ${((median[10_000] ?? 0) / (median[10] ?? 1)).toFixed(2)} (target ≤ 1.3)`);
    console.log(`${name}: cold-load ratio 10,000 / 10 events = ${((coldMedian[10_000] ?? 0) / (coldMedian[10] ?? 1)).toFixed(2)} (no cached state; no target)`);
  }
  await store.close();
} finally {
  await pool.end().catch(() => undefined);
  await database.stop();
}
