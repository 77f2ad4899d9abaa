import type { NotCaughtUp } from './soak-traffic.js';

// What the soak's chaos excuses, and what it does not. A projector killed and catching up, or a
// rebuild under way, may leave a read's Consistency-Position unreached within the query API's
// wait: that 503 `not-caught-up` is the service keeping its word. The same 503 at any other time
// is a projector falling behind for no reason, and one stalled for minutes without failing would
// otherwise pass every check.

/** A disturbance the soak causes on purpose, in ms since the load began: from its start until what it disturbed was whole again (or the soak gave up waiting). */
export type ChaosStep = { readonly what: string; readonly startedMs: number; readonly recoveredMs: number };

/**
 * How long after a step's recovery a read may still time out because of it: the read models are
 * at the head when the step recovers, but reads that began waiting before then, and the backlog
 * the restarted process's caches and JIT bring, take a little while to clear.
 */
export const notCaughtUpGraceMs = 30_000;

/** Sorts the `not-caught-up` answers into those a chaos step excuses (during it, or within the grace after its recovery) and the rest. */
export function judgeNotCaughtUp(
  answers: readonly NotCaughtUp[],
  steps: readonly ChaosStep[],
  since: number,
): { readonly excused: readonly NotCaughtUp[]; readonly unexcused: readonly NotCaughtUp[] } {
  const excusedAt = (atMs: number) => steps.some((step) => atMs >= step.startedMs && atMs <= step.recoveredMs + notCaughtUpGraceMs);
  const excused: NotCaughtUp[] = [];
  const unexcused: NotCaughtUp[] = [];
  for (const answer of answers) (excusedAt(answer.at - since) ? excused : unexcused).push(answer);
  return { excused, unexcused };
}

/**
 * Steps that began after the load window ended (`loadEndMs`): done, but on an idle service,
 * which is not what they are there to test (a kill mid-batch, a rebuild beside live writes).
 */
export function stepsAfterLoad(steps: readonly ChaosStep[], loadEndMs: number): string[] {
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  return steps.filter((step) => step.startedMs > loadEndMs).map((step) => `chaos: ${step.what} began at ${seconds(step.startedMs)}, after the load ended at ${seconds(loadEndMs)}`);
}
