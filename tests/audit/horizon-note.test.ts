import { describe, expect, it } from 'vitest';
import { notCheckedNote } from '../../src/infrastructure/audit/horizon-note.js';

// Holding a transaction open in a test would hold back every other test's reads of the log on
// the same server: the rule is specified here, and audit:verify prints what it answers.
const holder = (ageMs: number) => ({ pid: 4242, xid: 900n, ageMs, database: 'bookable', applicationName: 'psql', state: 'idle in transaction', query: 'begin' });

describe('the NOT CHECKED note of audit:verify', () => {
  it('names a transaction open for a second or more and since before the check began', () => {
    expect(notCheckedNote(holder(40_000), 2_000)).toBe(
      'NOT CHECKED: events committed after a transaction open for 40 s began (pid 4242, bookable, idle in transaction); run again once it ends',
    );
  });

  it('leaves out a moment of ordinary traffic, one begun during the check, and no transaction at all', () => {
    expect(notCheckedNote(holder(300), 50)).toBeUndefined();
    expect(notCheckedNote(holder(5_000), 60_000)).toBeUndefined();
    expect(notCheckedNote(undefined, 50)).toBeUndefined();
  });
});
