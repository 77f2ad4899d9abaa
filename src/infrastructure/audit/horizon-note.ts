import type { HorizonHolder } from '../pg-event-store/pg-event-store.js';

/**
 * What a check of the global order must add when a transaction held it back: the order stops
 * below the oldest transaction still open, so one open since before the check began hid every
 * event committed after it began, and a count alone did not say so. A moment's transaction of
 * ordinary traffic hides next to nothing: only one open for `minAgeMs` or more, and longer than
 * the check took, is reported.
 */
export function notCheckedNote(holder: HorizonHolder | undefined, checkMs: number, minAgeMs = 1_000): string | undefined {
  if (!holder || holder.ageMs < Math.max(minAgeMs, checkMs)) return undefined;
  const who = [holder.pid === undefined ? undefined : `pid ${holder.pid}`, holder.database, holder.state].filter(Boolean).join(', ');
  return `NOT CHECKED: events committed after a transaction open for ${Math.round(holder.ageMs / 1000)} s began (${who}); run again once it ends`;
}
