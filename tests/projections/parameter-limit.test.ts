import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { postgresParameterLimit, withinParameterLimit } from '../../src/projections/shared/parameter-limit.js';

/** A row of `columns` keys, tagged with its place in the batch so that order shows. */
const row = (index: number, columns: number) => Object.fromEntries(Array.from({ length: columns }, (_, k) => [`c${k}`, k === 0 ? index : k]));
const cost = (rows: readonly object[]) => rows.reduce((sum, r) => sum + Object.keys(r).length, 0);

describe('withinParameterLimit: a batch of rows cut into inserts PostgreSQL accepts', () => {
  it('given a batch that fits, then one run: the whole batch, one statement', () => {
    const rows = Array.from({ length: 3_120 }, (_, i) => row(i, 21));
    expect(withinParameterLimit(rows)).toEqual([rows]);
  });

  it('given 3,200 bookings of 21 columns, then a run of 3,120 rows (65,520 parameters) and one of the other 80', () => {
    const rows = Array.from({ length: 3_200 }, (_, i) => row(i, 21));
    const runs = withinParameterLimit(rows);
    expect(runs.map((run) => run.length)).toEqual([3_120, 80]);
    expect(cost(runs[0] ?? [])).toBeLessThanOrEqual(postgresParameterLimit);
  });

  it('given no rows, then no run: no statement', () => {
    expect(withinParameterLimit([])).toEqual([]);
  });

  it('given any rows and limit, then the runs are the rows in order, each within the limit, each as full as the next row allows', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 60 }), fc.integer({ min: 1, max: 40 }), (widths, limit) => {
        const rows = widths.map((columns, i) => row(i, columns));
        const runs = withinParameterLimit(rows, limit);
        expect(runs.flat()).toEqual(rows);
        for (const [i, run] of runs.entries()) {
          expect(run.length).toBeGreaterThan(0);
          // A row wider than the limit cannot be cut: it goes alone, and PostgreSQL has the last word.
          if (run.length > 1) expect(cost(run)).toBeLessThanOrEqual(limit);
          const next = runs[i + 1]?.[0];
          if (next) expect(cost([...run, next])).toBeGreaterThan(limit);
        }
      }),
    );
  });
});
