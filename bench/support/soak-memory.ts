import { checkOf, type Check } from './soak-checks.js';
import type { Gauge, Role } from './soak-services.js';

/** Sampled memory, in MB, in ms since the load began, and what bounds it. */
export type MemoryMedians = {
  /** The median of `role`'s `gauge` over [fromMs, toMs). */
  median(role: Role, gauge: Gauge, fromMs: number, toMs: number): number | undefined;
  /** The highest sample of `role`'s `gauge` over the run. */
  peak(role: Role, gauge: Gauge): number | undefined;
  /** When `role`'s current process started (negative: before the load began). */
  startedMs(role: Role): number;
  /** What the query cache may hold: `QUERY_CACHE_MB`, as the services were started with. */
  readonly queryCacheMb: number;
};

export const rssGrowthLimit = 0.2;
/** Runs at least this long are also judged on how fast RSS still grows at the end. */
export const lateGrowthMinLoadMs = 5 * 60_000;

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const percent = (fraction: number) => `${fraction >= 0 ? '+' : ''}${(fraction * 100).toFixed(1)} %`;

/** The window medians are taken over: a tenth of the run, 5 s to 30 s. */
export const medianWindow = (loadMs: number) => Math.max(5_000, Math.min(30_000, loadMs * 0.1));

/**
 * How long a process started during the load (the projector, killed twice) warms up: it catches
 * up with the log it missed, compiles its hot code and fills its caches, from some 60 MB at its
 * start to about 125 MB six seconds later in a one-minute soak, and 135 MB at the end. A tenth of
 * the run, 5 s to a minute.
 */
export const restartWarmUp = (loadMs: number) => Math.max(5_000, Math.min(60_000, loadMs * 0.1));

/**
 * When `role`'s warm-up ended: once its V8 heap in use levelled off, i.e. the first window whose
 * median is within 5 % of the median at the end; at least 30 s (half of a short run), at most
 * half the run. Its bounded caches fill for minutes at the soak's rate (2,000 folded states per
 * aggregate, 10,000 verified tokens, 32 MB of query answers), which is not what the RSS check is
 * after. A leak never levels off: its growth is then judged over the second half of the run,
 * and the rate it still grows at in the last quarter (see `rssCheck`).
 * A process started during the load (the projector, after its kills): `restartWarmUp` after its
 * last start. One without a heap gauge that was never restarted (the projector of a run its
 * kills did not come in): a quarter of the run, at most a minute.
 */
export function warmUpEnd(memory: MemoryMedians, role: Role, loadMs: number): number {
  const started = memory.startedMs(role);
  if (started > 0) return started + restartWarmUp(loadMs);
  const earliest = Math.min(30_000, loadMs * 0.5);
  const latest = Math.max(earliest, loadMs * 0.5);
  const window = medianWindow(loadMs);
  const final = memory.median(role, 'heap', loadMs - window, loadMs + 1);
  if (final === undefined) return Math.min(60_000, Math.max(earliest, loadMs * 0.25));
  for (let start = earliest; start < latest; start += 5_000) {
    const level = memory.median(role, 'heap', start, start + window);
    if (level !== undefined && level >= final * 0.95) return start;
  }
  return latest;
}

/**
 * RSS after warm-up grew less than `rssGrowthLimit`, and, on runs of five minutes or more, the
 * last quarter's growth, kept up from the earliest warm-up end (30 s), would stay under it too.
 * Caches filling level off by the last quarter; a steady leak does not, and the adaptive warm-up
 * alone judged it over half the run only (6 MB/min read +17.8 % over ten minutes and passed).
 * Short runs are not judged on the rate: a quarter of a minute is within GC noise.
 * The projector, killed twice, is judged from its last start: a leak it had before is gone with
 * the process, and one it has now shows after its warm-up as anyone's (over the last stretch of
 * the run, so not on the rate too). A last start so late that its warm-up and two windows do not
 * fit in what is left of the run is not judged, and its line says so.
 * A query cache that reports more than it may hold is a failure of its own.
 */
export function rssCheck(memory: MemoryMedians, loadMs: number): Check {
  const window = medianWindow(loadMs);
  const problems: string[] = [];
  const parts: string[] = [];
  for (const role of ['command', 'query', 'projector'] as const satisfies readonly Role[]) {
    const cachePeak = memory.peak(role, 'cache');
    if (cachePeak !== undefined && cachePeak > memory.queryCacheMb) {
      problems.push(`${role}: its query cache reported ${cachePeak.toFixed(1)} MB, more than QUERY_CACHE_MB (${memory.queryCacheMb} MB)`);
    }
    const started = memory.startedMs(role);
    const warmedUp = warmUpEnd(memory, role, loadMs);
    if (started > 0 && warmedUp + window > loadMs - window) {
      const needed = restartWarmUp(loadMs) + 2 * window;
      parts.push(
        `${role} not judged: its last start at ${seconds(started)} leaves ${seconds(loadMs - started)} of the run, ` +
          `less than the ${seconds(restartWarmUp(loadMs))} warm-up and two ${seconds(window)} windows (${seconds(needed)})`,
      );
      continue;
    }
    const after = withoutCache(memory, role, warmedUp, warmedUp + window);
    const end = withoutCache(memory, role, loadMs - window, loadMs + 1);
    if (after === undefined || end === undefined) {
      problems.push(`${role}: no RSS samples`);
      continue;
    }
    const growth = end / after - 1;
    // A restarted process is judged over the last stretch of the run already.
    const late = loadMs >= lateGrowthMinLoadMs && started <= 0 ? lateGrowth(memory, role, loadMs, end) : undefined;
    const lateText = late === undefined ? '' : `, ${late.mbPerMinute.toFixed(1)} MB/min in the last quarter`;
    const sinceStart = started > 0 ? `, ${seconds(warmedUp - started)} after its last start at ${seconds(started)}` : '';
    parts.push(`${role} ${after.toFixed(0)} → ${end.toFixed(0)} MB after ${seconds(warmedUp)}${sinceStart} (${percent(growth)}${lateText})`);
    if (growth >= rssGrowthLimit) problems.push(`${role} RSS grew ${percent(growth)} after warm-up (limit ${rssGrowthLimit * 100} %)`);
    if (late && late.projected >= rssGrowthLimit) {
      problems.push(
        `${role} RSS still grew ${late.mbPerMinute.toFixed(1)} MB/min in the last quarter: kept up from ${seconds(late.sinceMs)}, ${percent(late.projected)} (limit ${rssGrowthLimit * 100} %)`,
      );
    }
  }
  return checkOf(
    `RSS after warm-up grew < ${rssGrowthLimit * 100} %`,
    `medians over ${seconds(window)} once the heap in use levelled off (a restarted process: ${seconds(restartWarmUp(loadMs))} after its last start), and at the end, ` +
      `less what the query cache held (at most QUERY_CACHE_MB, ${memory.queryCacheMb} MB): ${parts.join('; ')}`,
    problems,
  );
}

/**
 * `role`'s RSS over [fromMs, toMs), less what its query cache held then: the cache is bounded
 * (`QUERY_CACHE_MB`) and at the soak's rate fills for the whole of a ten-minute run, which is
 * growth but no leak. No more than that bound is put down to it, whatever the cache reports: a
 * cache that miscounts upwards would otherwise hide a leak of the same size. A role without a
 * query cache holds nothing in one.
 */
function withoutCache(memory: MemoryMedians, role: Role, fromMs: number, toMs: number): number | undefined {
  const rss = memory.median(role, 'rss', fromMs, toMs);
  const cache = Math.min(memory.median(role, 'cache', fromMs, toMs) ?? 0, memory.queryCacheMb);
  return rss === undefined ? undefined : rss - cache;
}

/** How fast `role`'s RSS (less its query cache) grew over the last quarter, and what that rate adds up to from 30 s on. */
function lateGrowth(memory: MemoryMedians, role: Role, loadMs: number, end: number) {
  const window = medianWindow(loadMs);
  const quarterMark = loadMs * 0.75;
  const atQuarter = withoutCache(memory, role, quarterMark - window, quarterMark);
  if (atQuarter === undefined) return undefined;
  // Both medians are taken over a window ending at their mark, so they lie a quarter apart.
  const perMs = (end - atQuarter) / (loadMs - quarterMark);
  const sinceMs = 30_000;
  const base = withoutCache(memory, role, sinceMs, sinceMs + window) ?? atQuarter;
  return { mbPerMinute: perMs * 60_000, sinceMs, projected: (perMs * (loadMs - sinceMs)) / base };
}
