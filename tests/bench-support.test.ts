import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Position } from '../src/application/ports/position.js';
import { CheckpointLags } from '../bench/support/booking-load.js';
import { cannon } from '../bench/support/cannon.js';
import { pacedLoad } from '../bench/support/paced-load.js';
import { judgeNotCaughtUp, notCaughtUpGraceMs, stepsAfterLoad, type ChaosStep } from '../bench/support/soak-chaos.js';
import { doctorScheduleKinds, listingCalendarKinds, replayHolds } from '../bench/support/soak-checks.js';
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
});

describe('judgeNotCaughtUp (the soak\'s read-your-writes check)', () => {
  const since = 1_000_000;
  const kill: ChaosStep = { what: 'projector SIGKILL 1', startedMs: 10_000, recoveredMs: 15_000 };
  const rebuild: ChaosStep = { what: 'rebuild of bookings', startedMs: 100_000, recoveredMs: 120_000 };
  const at = (ms: number) => ({ at: since + ms, what: `read at ${ms}` });

  it('given 503 not-caught-up answers during a step or within the grace after its recovery, then they are excused', () => {
    const answers = [at(10_000), at(12_000), at(15_000 + notCaughtUpGraceMs), at(110_000), at(149_000)];
    expect(judgeNotCaughtUp(answers, [kill, rebuild], since)).toEqual({ excused: answers, unexcused: [] });
  });

  it('given 503 not-caught-up answers before any step, between steps past the grace, or with no step at all, then they are not', () => {
    const answers = [at(9_999), at(15_001 + notCaughtUpGraceMs), at(99_000), at(200_000)];
    expect(judgeNotCaughtUp(answers, [kill, rebuild], since)).toEqual({ excused: [], unexcused: answers });
    expect(judgeNotCaughtUp([at(12_000)], [], since).unexcused).toHaveLength(1);
  });
});

describe('stepsAfterLoad (the soak\'s chaos check)', () => {
  it('given a step that began once the load window had ended, then it is a problem; steps within it are not', () => {
    const steps: ChaosStep[] = [
      { what: 'projector SIGKILL 1', startedMs: 18_000, recoveredMs: 25_000 },
      { what: 'projector SIGKILL 2', startedMs: 61_000, recoveredMs: 70_000 },
    ];
    expect(stepsAfterLoad(steps, 60_000)).toEqual(['chaos: projector SIGKILL 2 began at 61.0 s, after the load ended at 60.0 s']);
  });
});

/**
 * One sample a second of each role's memory, in MB, as `curve` gives it at each ms since the load
 * began, and of what its query cache holds as `cache` does (none unless given). As the sampler's,
 * medians leave out samples of nothing (a gauge the role does not have).
 */
function sampled(loadMs: number, curve: (role: Role, gauge: Exclude<Gauge, 'cache'>, atMs: number) => number, cache = (_role: Role, _atMs: number) => 0): MemoryMedians {
  return {
    median(role, gauge, fromMs, toMs) {
      const values: number[] = [];
      for (let at = Math.ceil(fromMs / 1000) * 1000; at < toMs && at <= loadMs; at += 1000) {
        const mb = gauge === 'cache' ? cache(role, at) : curve(role, gauge, at);
        if (mb > 0) values.push(mb);
      }
      values.sort((a, b) => a - b);
      return values[Math.floor(values.length / 2)];
    },
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
      );
    expect(rssCheck(filling(true), 10 * minute)).toMatchObject({ ok: true, problems: [] });
    const uncached = rssCheck(filling(false), 10 * minute);
    expect(uncached.ok).toBe(false);
    expect(uncached.problems.every((problem) => problem.startsWith('query RSS'))).toBe(true);
  });

  it('given RSS that jumps by a fifth after warm-up, then it fails on a one-minute run too', () => {
    const jump = sampled(minute, (_role, gauge, at) => (gauge === 'rss' && at > 45_000 ? 200 : 160));
    expect(rssCheck(jump, minute).problems).toEqual([expect.stringMatching(/^command RSS grew \+25\.0 %/), expect.stringMatching(/^query RSS grew \+25\.0 %/)]);
  });
});
