// The free slots of a doctor booked solid: `GET /v1/doctors/{id}/slots` over its widest range (31
// days) for a 24/7 doctor with 10-minute slots, every one of them taken. A public endpoint, so its
// worst case is what anyone may ask for, many times a minute.
// `npm run bench:doctor-slots`; one line: the median time per request, warm.
import { performance } from 'node:perf_hooks';
import type { WeeklySchedule } from '../src/domain/doctor-schedule/weekly-schedule.js';
import { freeSlots } from '../src/projections/doctors/doctor-slots.js';
import { percentile } from './support/bench-database.js';

const allDay = [{ from: '00:00', to: '24:00' }];
const schedule: WeeklySchedule = {
  timeZone: 'Europe/Berlin',
  slotMinutes: 10,
  weeklyHours: { mon: allDay, tue: allDay, wed: allDay, thu: allDay, fri: allDay, sat: allDay, sun: allDay },
  daysOff: [],
};
// Across the spring-forward night, so the walk meets a daylight-saving change as well.
const from = Date.parse('2030-03-15T00:00:00Z');
const range = { from: new Date(from), to: new Date(from + 31 * 86_400_000) };
const now = new Date(from - 86_400_000);
const slotMs = 10 * 60_000;
const booked = Array.from({ length: (31 * 86_400_000 + 4 * 3_600_000) / slotMs }, (_, i) => ({
  start: new Date(from - 2 * 3_600_000 + i * slotMs).toISOString(),
  end: new Date(from - 2 * 3_600_000 + (i + 1) * slotMs).toISOString(),
}));

// The query asks for a page (`limit + 1` slots), so the walk runs to the end when none is free.
const ask = () => freeSlots(schedule, booked, range, now, 101);
for (let i = 0; i < 20; i++) ask();
const times: number[] = [];
for (let i = 0; i < 100; i++) {
  const started = performance.now();
  const free = ask();
  times.push(performance.now() - started);
  if (free.length !== 0) throw new Error(`expected no free slot, got ${free.length}`);
}
console.log(`free slots of a doctor booked solid, 31 days of 10-minute slots (${booked.length} bookings): median ${percentile(times, 50).toFixed(2)} ms, p99 ${percentile(times, 99).toFixed(2)} ms per request, warm`);
