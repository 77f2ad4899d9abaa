/**
 * A place in the global order of all events. Both adapters fit one shape: EventStoreDB's
 * `{ commit, prepare }` log positions, and PostgreSQL's `(transaction id, sequence number)`
 * pair, which is what lets a reader there never skip a late-committing transaction.
 * Compare with `comparePositions`; never do arithmetic on the parts.
 */
export type Position = { readonly commit: bigint; readonly prepare: bigint };

/** Before every event: a subscription from here delivers everything. */
export const START: Position = Object.freeze({ commit: 0n, prepare: 0n });

export function comparePositions(a: Position, b: Position): -1 | 0 | 1 {
  if (a.commit !== b.commit) return a.commit < b.commit ? -1 : 1;
  if (a.prepare !== b.prepare) return a.prepare < b.prepare ? -1 : 1;
  return 0;
}

export function maxPosition(a: Position, b: Position): Position {
  return comparePositions(a, b) >= 0 ? a : b;
}

/** The string form used in checkpoints and the `Event-Position` header. */
export function formatPosition(position: Position): string {
  return `${position.commit}.${position.prepare}`;
}

const positionPattern = /^(\d{1,20})\.(\d{1,20})$/;

/** `undefined` for anything that `formatPosition` could not have produced. */
export function parsePosition(text: string): Position | undefined {
  const match = positionPattern.exec(text);
  if (!match?.[1] || !match[2]) return undefined;
  const commit = BigInt(match[1]);
  const prepare = BigInt(match[2]);
  const max = 2n ** 64n - 1n;
  if (commit > max || prepare > max) return undefined;
  return { commit, prepare };
}
