import { comparePositions, formatPosition, type Position } from '../../src/application/ports/position.js';
import type { NotCaughtUp } from './soak-traffic.js';

// What the soak's chaos excuses, and what it does not. A projector killed and catching up may
// leave a read's Consistency-Position unreached within the query API's wait: that 503
// `not-caught-up` is the service keeping its word. The same 503 at any other time is a projector
// falling behind for no reason, and one stalled for minutes without failing would otherwise
// pass every check. A rebuild excuses nothing: readers wait on the active generation alone
// (`waitForPosition`), which the rebuild beside it does not hold back.

/**
 * A disturbance the soak causes on purpose, in ms since the load began: from its start until
 * what it disturbed was whole again (or the soak gave up waiting). A projector kill has recovered
 * when the restarted process has every read model at the log head as it stood on its restart; a
 * rebuild, when its generation was swapped in.
 */
export type ChaosStep = { readonly what: string; readonly kind: 'projector-kill' | 'rebuild'; readonly startedMs: number; readonly recoveredMs: number };

/**
 * How long after a kill's recovery a read may still begin waiting and time out because of it:
 * the events written while the restarted process caught up, which it projects next. A projector
 * at the head stays there within a batch or two, well under the query API's 5 s wait.
 */
export const notCaughtUpGraceMs = 2_000;

/**
 * Sorts the `not-caught-up` answers into those a projector kill excuses (the read's wait ran
 * into the kill, or began before the grace after its recovery was out) and the rest.
 */
export function judgeNotCaughtUp(
  answers: readonly NotCaughtUp[],
  steps: readonly ChaosStep[],
  since: number,
): { readonly excused: readonly NotCaughtUp[]; readonly unexcused: readonly NotCaughtUp[] } {
  const kills = steps.filter((step) => step.kind === 'projector-kill');
  const excusedBy = (answer: NotCaughtUp) =>
    kills.some((step) => answer.at - since >= step.startedMs && answer.waitStartedAt - since <= step.recoveredMs + notCaughtUpGraceMs);
  const excused: NotCaughtUp[] = [];
  const unexcused: NotCaughtUp[] = [];
  for (const answer of answers) (excusedBy(answer) ? excused : unexcused).push(answer);
  return { excused, unexcused };
}

/**
 * Which of `names` had their active generation short of `asked` (the position a read waited
 * for), with where each stood; taken when the 503 came, so one that caught up a moment after the
 * wait ran out shows no more.
 */
export function laggingProjections(active: ReadonlyMap<string, Position>, asked: Position, names: readonly string[]): string {
  const behind = names.flatMap((name) => {
    const reached = active.get(name);
    if (reached === undefined) return [`${name} at no active generation`];
    return comparePositions(reached, asked) < 0 ? [`${name} at ${formatPosition(reached)}`] : [];
  });
  return behind.join(', ') || 'none (all past it by the time the 503 came)';
}

/**
 * Steps that began after the load window ended (`loadEndMs`): done, but on an idle service,
 * which is not what they are there to test (a kill mid-batch, a rebuild beside live writes).
 */
export function stepsAfterLoad(steps: readonly ChaosStep[], loadEndMs: number): string[] {
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return steps.filter((step) => step.startedMs > loadEndMs).map((step) => `chaos: ${step.what} began at ${seconds(step.startedMs)}, after the load ended at ${seconds(loadEndMs)}`);
}
