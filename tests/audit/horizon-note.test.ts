import { describe, expect, it } from 'vitest';
import { notCheckedNote } from '../../src/infrastructure/audit/horizon-note.js';

// What audit:verify prints when its wait for the events committed before it gives up (the
// command-line test holds such a transaction open; here, each form of the note).
const holder = (ageMs: number) => ({ pid: 4242 as number | undefined, xid: 900n, ageMs, database: 'bookable', applicationName: 'psql', state: 'idle in transaction', query: 'begin' });

describe('the NOT CHECKED note of audit:verify', () => {
  it('names the transaction holding the events back, and how long the check waited for it', () => {
    expect(notCheckedNote(holder(40_000), 5_000)).toBe(
      'NOT CHECKED: events committed before this check began are held back by a transaction still open after 5000 ms (open for 40 s: pid 4242, bookable, idle in transaction); run again once it ends',
    );
  });

  it('names a prepared transaction without a pid, and says what it can when the transaction ended meanwhile', () => {
    expect(notCheckedNote({ ...holder(3_000), pid: undefined, state: 'prepared' }, 300)).toContain('(open for 3 s: bookable, prepared)');
    expect(notCheckedNote(undefined, 300)).toBe('NOT CHECKED: events committed before this check began are held back by a transaction still open after 300 ms; run again once it ends');
  });
});
