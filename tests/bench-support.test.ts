import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Position } from '../src/application/ports/position.js';
import { CheckpointLags } from '../bench/support/booking-load.js';
import { cannon } from '../bench/support/cannon.js';
import { pacedLoad } from '../bench/support/paced-load.js';
import { judgeNotCaughtUp, laggingProjections, notCaughtUpGraceMs, stepsAfterLoad, type ChaosStep } from '../bench/support/soak-chaos.js';
import { checkLoadExercised, doctorScheduleKinds, listingCalendarKinds, replayHolds } from '../bench/support/soak-checks.js';
import { Ledger } from '../bench/support/soak-load.js';
import { rssCheck, type MemoryMedians } from '../bench/support/soak-memory.js';
import type { Gauge, Role } from '../bench/support/soak-services.js';
import { sleep } from '../src/application/sleep.js';

// The benches' and the soak's own arithmetic: what a figure or a check counts, so that neither
// looks stronger than it is.

const position = (n: number): Position => ({ commit: BigInt(n), prepare: BigInt(n) });

describe('cannon (autocannon runs of the benches)', () => {
  // Three answers in four a 503 at once, the fourth a 200 after 100 ms: refusals must not pull
  // the latencies down (counted with them, p50 is a refusal's).
  let server: http.Server;
  let url = '';
  beforeAll(async () => {
    let n = 0;
    server = http.createServer((_request, response) => {
      if (n++ % 4 !== 0) response.writeHead(503).end();
      else setTimeout(() => response.writeHead(200, { 'content-type': 'application/json' }).end('{}'), 100);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('given most answers are instant 503s, then p50 and p99 are of the 2xx alone, and the 503s are counted', async () => {
    const run = await cannon(url, { seconds: 1, connections: 4 });
    expect(run.non2xx).toBeGreaterThan(run.rps);
    expect(run.p50).toBeGreaterThanOrEqual(99);
    expect(run.p99).toBeGreaterThanOrEqual(99);
  });
});

describe('pacedLoad', () => {
  it('given every other answer a 503 at once, then it counts them non-2xx and keeps them out of the rate and the latencies', async () => {
    let n = 0;
    const send = async () => {
      if (n++ % 2 === 0) return 503;
      await sleep(20);
      return 201;
    };
    const run = await pacedLoad({ rate: 40, seconds: 0.5, maxInFlight: 10, send });
    expect(run.non2xx).toBe(10);
    expect(run.errors).toBe(0);
    expect(run.p50).toBeGreaterThanOrEqual(19);
    expect(run.rps).toBeLessThanOrEqual(25);
  });
});

describe('CheckpointLags (projection lag of bench:http and bench:projections)', () => {
  it('given commands whose checkpoint came, then each lag runs from the answer to the checkpoint', () => {
    const lags = new CheckpointLags();
    lags.answered(position(10), 0);
    lags.answered(position(11), 5);
    lags.reached(position(11), 25);
    expect(lags.summary(1_000)).toEqual({ p50: 20, p99: 25, sent: 2, measured: 2, pending: 0, pendingAtLeastMs: undefined });
  });

  it('given commands no checkpoint reached by the end of the wait, then they count at their lag so far, a lower bound, and are told apart', () => {
    const lags = new CheckpointLags();
    lags.answered(position(10), 0);
    lags.answered(position(11), 100);
    lags.answered(position(12), 200);
    lags.reached(position(10), 10);
    const summary = lags.summary(1_200);
    expect(summary).toMatchObject({ sent: 3, measured: 1, pending: 2, pendingAtLeastMs: 1_000 });
    // Lags 10, 1,000 and 1,100: the worst is the one still waiting, not the one measured.
    expect(summary.p99).toBe(1_100);
    expect(summary.p50).toBe(1_000);
  });
});

describe('replayHolds (the soak\'s double-booking check, from the log)', () => {
  const range = (bookingId: string, startDate: string, endDate: string) => ({ listingId: 'l', bookingId, startDate, endDate });

  it('given holds booked and released in turn, then nothing is flagged', () => {
    const events = [
      { type: 'DatesHeld', data: { ...range('a', '2030-01-01', '2030-01-03'), holdExpiresAt: '2030-01-01T00:00:00Z', heldOn: '2029-12-01' } },
      { type: 'DatesBooked', data: range('a', '2030-01-01', '2030-01-03') },
      { type: 'DatesHeld', data: { ...range('b', '2030-01-03', '2030-01-05'), holdExpiresAt: '2030-01-01T00:00:00Z', heldOn: '2029-12-01' } },
      { type: 'DatesReleased', data: { ...range('a', '2030-01-01', '2030-01-03'), reason: 'cancelled' } },
      { type: 'DatesHeld', data: { ...range('c', '2030-01-02', '2030-01-03'), holdExpiresAt: '2030-01-01T00:00:00Z', heldOn: '2029-12-01' } },
      { type: 'DatesBooked', data: range('c', '2030-01-02', '2030-01-03') },
    ];
    expect(replayHolds('listingCalendar-l', events, listingCalendarKinds)).toEqual([]);
  });

  it('given a DatesBooked for a booking whose dates were released and then held by another, then both the booking of dates not held and the double booking are flagged', () => {
    const events = [
      { type: 'DatesHeld', data: { ...range('a', '2030-01-01', '2030-01-03'), holdExpiresAt: '2030-01-01T00:00:00Z', heldOn: '2029-12-01' } },
      { type: 'DatesReleased', data: { ...range('a', '2030-01-01', '2030-01-03'), reason: 'expired' } },
      { type: 'DatesHeld', data: { ...range('b', '2030-01-02', '2030-01-04'), holdExpiresAt: '2030-01-01T00:00:00Z', heldOn: '2029-12-01' } },
      { type: 'DatesBooked', data: range('a', '2030-01-01', '2030-01-03') },
    ];
    expect(replayHolds('listingCalendar-l', events, listingCalendarKinds)).toEqual([
      'listingCalendar-l: DatesBooked of a for 2030-01-01..2030-01-03, which it did not hold (released or never held)',
      'listingCalendar-l: a took 2030-01-01..2030-01-03 while b held 2030-01-02..2030-01-04',
    ]);
  });

  it('given a booked range, then a later hold over it is flagged', () => {
    const events = [
      { type: 'DatesHeld', data: { ...range('a', '2030-01-01', '2030-01-03'), holdExpiresAt: '2030-01-01T00:00:00Z', heldOn: '2029-12-01' } },
      { type: 'DatesBooked', data: range('a', '2030-01-01', '2030-01-03') },
      { type: 'DatesHeld', data: { ...range('b', '2030-01-02', '2030-01-03'), holdExpiresAt: '2030-01-01T00:00:00Z', heldOn: '2029-12-01' } },
    ];
    expect(replayHolds('listingCalendar-l', events, listingCalendarKinds)).toHaveLength(1);
  });

  it('given a doctor\'s slot moved onto another\'s, then it is flagged', () => {
    const slot = (appointmentId: string, start: string, end: string) => ({ doctorId: 'd', appointmentId, start, end });
    const events = [
      { type: 'SlotBooked', data: slot('x', '2030-01-01T09:00:00Z', '2030-01-01T09:30:00Z') },
      { type: 'SlotBooked', data: slot('y', '2030-01-01T10:00:00Z', '2030-01-01T10:30:00Z') },
      { type: 'SlotMoved', data: slot('y', '2030-01-01T09:00:00Z', '2030-01-01T09:30:00Z') },
    ];
    expect(replayHolds('doctorSchedule-d', events, doctorScheduleKinds)).toHaveLength(1);
  });

  describe('given a slot held for a move beside the appointment\'s own', () => {
    const slot = (appointmentId: string, start: string, end: string) => ({ doctorId: 'd', appointmentId, start, end });
    const held = [
      { type: 'SlotBooked', data: slot('x', '2030-01-01T09:00:00Z', '2030-01-01T09:30:00Z') },
      { type: 'SlotMoveHeld', data: slot('x', '2030-01-01T10:00:00Z', '2030-01-01T10:30:00Z') },
    ];

    it('when another appointment takes the old slot or the held one, then each is flagged', () => {
      const events = [...held, { type: 'SlotBooked', data: slot('y', '2030-01-01T09:00:00Z', '2030-01-01T09:30:00Z') }, { type: 'SlotBooked', data: slot('z', '2030-01-01T10:00:00Z', '2030-01-01T10:30:00Z') }];
      expect(replayHolds('doctorSchedule-d', events, doctorScheduleKinds)).toEqual([
        'doctorSchedule-d: y took 2030-01-01T09:00:00.000Z..2030-01-01T09:30:00.000Z while x held 2030-01-01T09:00:00.000Z..2030-01-01T09:30:00.000Z',
        'doctorSchedule-d: z took 2030-01-01T10:00:00.000Z..2030-01-01T10:30:00.000Z while x held 2030-01-01T10:00:00.000Z..2030-01-01T10:30:00.000Z',
      ]);
    });

    it('when the move completes, then the old slot is free and the held one taken', () => {
      const events = [
        ...held,
        { type: 'SlotMoveCompleted', data: slot('x', '2030-01-01T10:00:00Z', '2030-01-01T10:30:00Z') },
        { type: 'SlotBooked', data: slot('y', '2030-01-01T09:00:00Z', '2030-01-01T09:30:00Z') },
        { type: 'SlotBooked', data: slot('z', '2030-01-01T10:00:00Z', '2030-01-01T10:30:00Z') },
      ];
      expect(replayHolds('doctorSchedule-d', events, doctorScheduleKinds)).toEqual([
        'doctorSchedule-d: z took 2030-01-01T10:00:00.000Z..2030-01-01T10:30:00.000Z while x held 2030-01-01T10:00:00.000Z..2030-01-01T10:30:00.000Z',
      ]);
    });

    it('when the hold is dropped, then the held time is free and the old slot still taken', () => {
      const events = [
        ...held,
        { type: 'SlotMoveDropped', data: slot('x', '2030-01-01T10:00:00Z', '2030-01-01T10:30:00Z') },
        { type: 'SlotBooked', data: slot('z', '2030-01-01T10:00:00Z', '2030-01-01T10:30:00Z') },
        { type: 'SlotBooked', data: slot('y', '2030-01-01T09:00:00Z', '2030-01-01T09:30:00Z') },
      ];
      expect(replayHolds('doctorSchedule-d', events, doctorScheduleKinds)).toEqual([
        'doctorSchedule-d: y took 2030-01-01T09:00:00.000Z..2030-01-01T09:30:00.000Z while x held 2030-01-01T09:00:00.000Z..2030-01-01T09:30:00.000Z',
      ]);
    });
  });
});

/**
 * A soak's ledger in which each journey that must happen happened once: a booking paid (its
 * webhook accepted) and cancelled, an appointment rescheduled and cancelled, a reschedule refused
 * for the patient's time its race against the same patient's booking lost.
 */
function ledgerOfEveryJourney(): Ledger {
  const ledger = new Ledger();
  ledger.bookings.set('booking-1', { listingId: 'listing-1', cancelled: true, paymentIds: ['payment-1'] });
  ledger.payments.set('payment-1', { bookingId: 'booking-1', webhookAccepted: true });
  ledger.webhookDeliveries = 1;
  ledger.appointments.set('appointment-1', { doctorId: 'doctor-1', patientId: 'patient-1', start: '2030-01-07T09:00:00.000Z', reschedules: 1, cancelled: true });
  ledger.reschedules.lostToBooking = 1;
  return ledger;
}

describe('checkLoadExercised (the soak\'s floor under what the load did)', () => {
  it('given a payment accepted by its webhook, a booking and an appointment cancelled, a reschedule accepted, one refused by the race, and 5 % of the requests shed as overloaded, then it passes', () => {
    const check = checkLoadExercised(ledgerOfEveryJourney(), { requests: 1_000, overloaded: 50 });

    expect(check).toMatchObject({ ok: true, problems: [] });
  });

  it('given a run in which nothing was accepted, then each missing journey is flagged', () => {
    const check = checkLoadExercised(new Ledger(), { requests: 1_000, overloaded: 0 });

    expect(check.problems).toEqual([
      'no payment had its webhook accepted (at least 1 expected)',
      'no paid booking was cancelled (at least 1 expected)',
      'no appointment was cancelled (at least 1 expected)',
      'no reschedule was accepted (at least 1 expected)',
      'no reschedule lost the patient\'s time to the same patient\'s booking raced beside it (at least 1 expected)',
    ]);
  });

  it('given every journey but a reschedule refused by its race against the same patient\'s booking, then the race is flagged as never run', () => {
    const ledger = ledgerOfEveryJourney();
    ledger.reschedules.lostToBooking = 0;

    const check = checkLoadExercised(ledger, { requests: 1_000, overloaded: 0 });

    expect(check.problems).toEqual(['no reschedule lost the patient\'s time to the same patient\'s booking raced beside it (at least 1 expected)']);
  });

  it('given more than 5 % of the requests shed as overloaded, then it fails', () => {
    const check = checkLoadExercised(ledgerOfEveryJourney(), { requests: 1_000, overloaded: 51 });

    expect(check.problems).toEqual(['51 of 1,000 requests (5.1 %) were shed as overloaded (503), more than 5 %']);
  });
});

describe('judgeNotCaughtUp (the soak\'s read-your-writes check)', () => {
  const since = 1_000_000;
  // Killed at 10 s; the restarted projector had the read models at the log head at 15 s.
  const kill: ChaosStep = { what: 'projector SIGKILL 1', kind: 'projector-kill', startedMs: 10_000, recoveredMs: 15_000 };
  const rebuild: ChaosStep = { what: 'rebuild of bookings', kind: 'rebuild', startedMs: 100_000, recoveredMs: 120_000 };
  /** A read that began waiting at `fromMs` and was answered 503 at `toMs` (the query API's 5 s wait later, unless said). */
  const waited = (fromMs: number, toMs = fromMs + 5_000) => ({ waitStartedAt: since + fromMs, at: since + toMs, what: `read from ${fromMs}`, lagging: 'bookings at 1.1' });

  it('given reads whose wait overlapped a projector kill, from one begun before it up to one begun just after the restarted projector caught up, then they are excused', () => {
    const answers = [waited(6_000, 11_000), waited(12_000), waited(15_000), waited(15_000 + notCaughtUpGraceMs)];
    expect(judgeNotCaughtUp(answers, [kill, rebuild], since)).toEqual({ excused: answers, unexcused: [] });
  });

  it('given reads that began waiting after the restarted projector had caught up (past a grace of about 2 s), then they are not excused, however soon after', () => {
    const answers = [waited(15_001 + notCaughtUpGraceMs), waited(18_000), waited(40_000), waited(55_000)];
    expect(notCaughtUpGraceMs).toBeLessThanOrEqual(2_000);
    expect(judgeNotCaughtUp(answers, [kill, rebuild], since)).toEqual({ excused: [], unexcused: answers });
  });

  it('given reads that timed out while a rebuild ran, then they are not excused: readers wait on the active generation alone', () => {
    const answers = [waited(99_000), waited(100_000), waited(110_000), waited(119_000)];
    expect(judgeNotCaughtUp(answers, [kill, rebuild], since)).toEqual({ excused: [], unexcused: answers });
  });

  it('given reads answered before the kill began, or no chaos at all, then they are not excused', () => {
    expect(judgeNotCaughtUp([waited(4_000, 9_999)], [kill], since).unexcused).toHaveLength(1);
    expect(judgeNotCaughtUp([waited(12_000)], [], since).unexcused).toHaveLength(1);
  });
});

describe('laggingProjections (what an unexcused 503 not-caught-up names)', () => {
  it('given the read models\' active positions when the 503 came, then it names those behind the position waited for, with where they were', () => {
    const active = new Map([
      ['bookings', position(7)],
      ['doctors', position(9)],
      ['listings', position(12)],
    ]);
    expect(laggingProjections(active, position(9), ['bookings', 'doctors', 'listings', 'payments'])).toBe('bookings at 7.7, payments at no active generation');
    expect(laggingProjections(active, position(5), ['bookings', 'doctors'])).toBe('none (all past it by the time the 503 came)');
  });
});

describe('stepsAfterLoad (the soak\'s chaos check)', () => {
  it('given a step that began once the load window had ended, then it is a problem; steps within it are not', () => {
    const steps: ChaosStep[] = [
      { what: 'projector SIGKILL 1', kind: 'projector-kill', startedMs: 18_000, recoveredMs: 25_000 },
      { what: 'projector SIGKILL 2', kind: 'projector-kill', startedMs: 61_000, recoveredMs: 70_000 },
    ];
    expect(stepsAfterLoad(steps, 60_000)).toEqual(['chaos: projector SIGKILL 2 began at 61.0 s, after the load ended at 60.0 s']);
  });
});

/**
 * One sample a second of each role's memory, in MB, as `curve` gives it at each ms since the load
 * began, and of what its query cache holds as `cache` does (none unless given). As the sampler's,
 * medians leave out samples of nothing (a gauge the role does not have). Processes run from before
 * the load unless `started` says when one was (re)started; the query cache may hold 32 MB unless
 * `queryCacheMb` says otherwise.
 */
function sampled(
  loadMs: number,
  curve: (role: Role, gauge: Exclude<Gauge, 'cache'>, atMs: number) => number,
  cache = (_role: Role, _atMs: number) => 0,
  { started = {}, queryCacheMb = 32 }: { started?: Partial<Record<Role, number>>; queryCacheMb?: number } = {},
): MemoryMedians {
  const values = (role: Role, gauge: Gauge, fromMs: number, toMs: number) => {
    const found: number[] = [];
    for (let at = Math.ceil(fromMs / 1000) * 1000; at < toMs && at <= loadMs; at += 1000) {
      const mb = gauge === 'cache' ? cache(role, at) : curve(role, gauge, at);
      if (mb > 0) found.push(mb);
    }
    return found.sort((a, b) => a - b);
  };
  return {
    queryCacheMb,
    median: (role, gauge, fromMs, toMs) => {
      const found = values(role, gauge, fromMs, toMs);
      return found[Math.floor(found.length / 2)];
    },
    peak: (role, gauge) => values(role, gauge, 0, loadMs + 1).at(-1),
    startedMs: (role) => started[role] ?? -5_000,
  };
}

const minute = 60_000;
// Small deterministic jitter, as GC gives: ±3 MB.
const jitter = (atMs: number) => 3 * Math.sin(atMs / 7_000);

describe('rssCheck (the soak\'s memory check)', () => {
  it('given a steady 6 MB/min leak over ten minutes, then it fails, though the growth over the second half alone stays under 20 %', () => {
    const leaking = sampled(10 * minute, (_role, _gauge, at) => 140 + (6 * at) / minute + jitter(at));
    const check = rssCheck(leaking, 10 * minute);
    expect(check.ok).toBe(false);
    expect(check.problems.filter((problem) => problem.startsWith('command'))).toEqual([expect.stringMatching(/^command RSS still grew \d+\.\d MB\/min in the last quarter/)]);
  });

  it('given caches that fill for four minutes and then hold, then it passes, on a short run and a long one', () => {
    const filling = (loadMs: number) => sampled(loadMs, (_role, _gauge, at) => 140 + 80 * (1 - Math.exp(-at / minute)) + jitter(at));
    for (const loadMs of [minute, 10 * minute]) expect(rssCheck(filling(loadMs), loadMs)).toMatchObject({ ok: true, problems: [] });
  });

  it('given the query process\'s RSS growing as fast as its query cache fills, then it passes; the same growth with no cache behind it fails', () => {
    const growth = (at: number) => (3.5 * at) / minute;
    const filling = (cacheHolds: boolean) =>
      sampled(
        10 * minute,
        (role, gauge, at) => (gauge === 'rss' && role === 'query' ? 150 + growth(at) + jitter(at) : 150 + jitter(at)),
        (role, at) => (role === 'query' && cacheHolds ? growth(at) : 0),
        // Room for the 35 MB it fills to.
        { queryCacheMb: 64 },
      );
    expect(rssCheck(filling(true), 10 * minute)).toMatchObject({ ok: true, problems: [] });
    const uncached = rssCheck(filling(false), 10 * minute);
    expect(uncached.ok).toBe(false);
    expect(uncached.problems.every((problem) => problem.startsWith('query RSS'))).toBe(true);
  });

  it('given RSS that jumps by a fifth after warm-up, then it fails on a one-minute run too', () => {
    const jump = sampled(minute, (_role, gauge, at) => (gauge === 'rss' && at > 45_000 ? 200 : 160));
    expect(rssCheck(jump, minute).problems).toEqual([
      expect.stringMatching(/^command RSS grew \+25\.0 %/),
      expect.stringMatching(/^query RSS grew \+25\.0 %/),
      expect.stringMatching(/^projector RSS grew \+25\.0 %/),
    ]);
  });

  it('given a query cache that reports more than QUERY_CACHE_MB, then that is flagged, and no more than QUERY_CACHE_MB of RSS is put down to it', () => {
    // RSS grows 80 MB over ten minutes, all of it claimed by a cache that may hold 32 MB.
    const growth = (at: number) => (8 * at) / minute;
    const overclaimed = sampled(
      10 * minute,
      (role, gauge, at) => (gauge === 'rss' && role === 'query' ? 150 + growth(at) : 150),
      (role, at) => (role === 'query' ? growth(at) : 0),
    );

    const check = rssCheck(overclaimed, 10 * minute);

    expect(check.problems).toEqual([
      'query: its query cache reported 80.0 MB, more than QUERY_CACHE_MB (32 MB)',
      expect.stringMatching(/^query RSS grew \+\d+\.\d % after warm-up/),
      expect.stringMatching(/^query RSS still grew 8\.0 MB\/min in the last quarter/),
    ]);
  });

  it('given the projector restarted at 36 s of a one-minute run, then it is judged from its restart plus its warm-up: RSS levelling off passes, a quarter more fails', () => {
    // A fresh process: 60 MB at its start, about 125 MB once it has caught up, 135 MB at the end.
    const afterRestart = (at: number) => (at < 36_000 ? 140 : at < 42_000 ? 60 + ((at - 36_000) / 6_000) * 65 : 125 + ((at - 42_000) / 18_000) * 10);
    const levelling = sampled(minute, (role, gauge, at) => (role === 'projector' && gauge === 'rss' ? afterRestart(at) : 150), undefined, { started: { projector: 36_000 } });
    const growing = sampled(minute, (role, gauge, at) => (role === 'projector' && gauge === 'rss' ? afterRestart(at) + (at > 50_000 ? 35 : 0) : 150), undefined, {
      started: { projector: 36_000 },
    });

    const passed = rssCheck(levelling, minute);
    const failed = rssCheck(growing, minute);

    expect(passed).toMatchObject({ ok: true, problems: [] });
    expect(passed.summary).toMatch(/projector \d+ → \d+ MB after 42\.0 s, 6\.0 s after its last start at 36\.0 s \(\+\d+\.\d %\)/);
    expect(failed.problems).toEqual([expect.stringMatching(/^projector RSS grew \+\d+\.\d % after warm-up/)]);
  });

  it('given the projector restarted too late in the run to judge, then its line says so rather than pass it silently', () => {
    const late = sampled(minute, () => 150, undefined, { started: { projector: 52_000 } });

    const check = rssCheck(late, minute);

    expect(check.ok).toBe(true);
    expect(check.summary).toMatch(/projector not judged: its last start at 52\.0 s leaves 8\.0 s of the run, less than the 6\.0 s warm-up and two 6\.0 s windows \(18\.0 s\)/);
  });
});
