import { describe, expect, it } from 'vitest';
import { assertBookableRange, maxNights, todayIn } from '../../src/domain/listing-calendar/stay-range.rules.js';
import { addDays, type CalendarDate } from '../../src/domain/shared/calendar-date.js';
import { nights, type DateRange } from '../../src/domain/shared/date-range.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';
import { bookableNight, zonesWhereStayBookable } from '../../src/projections/shared/stay-horizon.js';

/** Every zone the runtime lists, and the two furthest from UTC. */
const zones = [...new Set([...Intl.supportedValuesOf('timeZone'), 'UTC', 'Etc/GMT+12', 'Etc/GMT-14'])];

/** What booking says of the stay's dates on `today`: nothing, or the code of the error it throws. */
function bookingSays(stay: DateRange, today: CalendarDate): string | undefined {
  try {
    assertBookableRange(stay, today);
    return undefined;
  } catch (error) {
    if (error instanceof DomainError) return error.code;
    throw error;
  }
}

const minuteMs = 60_000;
/** Some zone's midnight falls on every quarter hour (UTC+5:45, UTC+12:45): each of them, and the minute before it. */
const instantsAroundMidnights = Array.from({ length: 96 }, (_, quarter) => Date.parse('2030-01-10T00:00:00Z') + quarter * 15 * minuteMs).flatMap((ms) => [new Date(ms - minuteMs), new Date(ms)]);

/** One-night stays and the longest stays, ending around today and around the horizon. */
function staysAround(now: Date): DateRange[] {
  const utcToday = now.toISOString().slice(0, 10);
  const stay = (lastNight: number, length: number) => ({ startDate: addDays(utcToday, lastNight + 1 - length), endDate: addDays(utcToday, lastNight + 1) });
  return [-2, -1, 0, 1, 2, 363, 364, 365, 366, 367].flatMap((last) => [stay(last, 1), stay(last, maxNights)]);
}

describe('stay horizon: the listing queries offer exactly the dates booking takes', () => {
  it('given any zone and an instant around any midnight, then a night is offered, and a stay found, exactly where booking takes it', async () => {
    const disagreements: string[] = [];
    const refusals = new Set<string | undefined>();
    for (const now of instantsAroundMidnights) {
      const stays = staysAround(now);
      const found = await Promise.all(stays.map(async (stay) => {
        const where = await zonesWhereStayBookable(stay, now, async () => zones);
        return where === 'every' ? where : new Set(where);
      }));
      // A few todays among all the zones: booking is asked once for each.
      const verdicts = new Map<CalendarDate, (string | undefined)[]>();
      for (const timeZone of zones) {
        const today = todayIn(timeZone, now.toISOString());
        const said = verdicts.get(today) ?? stays.map((stay) => bookingSays(stay, today));
        verdicts.set(today, said);
        const bookable = bookableNight(timeZone, now);
        stays.forEach((stay, i) => {
          refusals.add(said[i]);
          const bookingTakes = said[i] === undefined;
          const where = found[i] ?? new Set();
          const at = `${timeZone} at ${now.toISOString()}: ${stay.startDate} to ${stay.endDate}`;
          if ((where === 'every' || where.has(timeZone)) !== bookingTakes) disagreements.push(`found: ${at}`);
          if (nights(stay) === 1 && bookable(stay.startDate) !== bookingTakes) disagreements.push(`night: ${at}`);
        });
      }
    }
    expect(disagreements).toEqual([]);
    // Both ends were reached, and nothing else refused the stays.
    expect(refusals).toEqual(new Set([undefined, 'dates-in-past', 'dates-too-far-ahead']));
  });

  it('takes no night in a zone the runtime does not know, as booking refuses it (invalid-time-zone) rather than failing the read', () => {
    expect(bookableNight('Mars/Olympus', new Date('2030-01-10T10:00:00Z'))('2030-01-11')).toBe(false);
  });

  it('reads the zones in use only for a stay at an edge: not for one well within the year, nor for one in the past or past the horizon everywhere', async () => {
    const now = new Date('2030-01-10T10:00:00Z');
    let reads = 0;
    const zonesInUse = async () => {
      reads += 1;
      return ['UTC', 'Pacific/Kiritimati'];
    };

    expect(await zonesWhereStayBookable({ startDate: '2030-03-01', endDate: '2030-03-08' }, now, zonesInUse)).toBe('every');
    expect(await zonesWhereStayBookable({ startDate: '2030-01-08', endDate: '2030-01-12' }, now, zonesInUse)).toEqual([]);
    expect(await zonesWhereStayBookable({ startDate: '2031-01-12', endDate: '2031-01-14' }, now, zonesInUse)).toEqual([]);
    expect(reads).toBe(0);

    expect(await zonesWhereStayBookable({ startDate: '2030-01-10', endDate: '2030-01-12' }, now, zonesInUse)).toEqual(['UTC']);
    expect(await zonesWhereStayBookable({ startDate: '2031-01-11', endDate: '2031-01-12' }, now, zonesInUse)).toEqual(['Pacific/Kiritimati']);
    expect(reads).toBe(2);
  });
});
