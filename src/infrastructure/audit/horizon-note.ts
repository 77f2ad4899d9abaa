import type { HorizonHolder } from '../pg-event-store/pg-event-store.js';

/**
 * What a check of the global order must say when events committed before it began are still
 * held back after its wait: the order stops below the oldest transaction still open, so whatever
 * committed after that transaction began was not checked. Names the transaction when it is known
 * (it may have ended since the wait gave up).
 */
export function notCheckedNote(holder: HorizonHolder | undefined, waitedMs: number): string {
  const who = holder
    ? ` (open for ${Math.round(holder.ageMs / 1000)} s: ${[holder.pid === undefined ? undefined : `pid ${holder.pid}`, holder.database, holder.state].filter(Boolean).join(', ')})`
    : '';
  return `NOT CHECKED: events committed before this check began are held back by a transaction still open after ${waitedMs} ms${who}; run again once it ends`;
}
