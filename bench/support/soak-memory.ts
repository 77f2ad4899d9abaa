import { checkOf, type Check } from './soak-checks.js';
import type { Gauge, Role } from './soak-services.js';

/** Medians of sampled memory, in MB, over [fromMs, toMs) since the load began. */
export type MemoryMedians = { median(role: Role, gauge: Gauge, fromMs: number, toMs: number): number | undefined };

export const rssGrowthLimit = 0.2;
/** Runs at least this long are also judged on how fast RSS still grows at the end. */
export const lateGrowthMinLoadMs = 5 * 60_000;

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const percent = (fraction: number) => `${fraction >= 0 ? '+' : ''}${(fraction * 100).toFixed(1)} %`;

/** The window medians are taken over: a tenth of the run, 5 s to 30 s. */
export const medianWindow = (loadMs: number) => Math.max(5_000, Math.min(30_000, loadMs * 0.1));

/**
 * When `role`'s warm-up ended: once its V8 heap in use levelled off, i.e. the first window whose
 * median is within 5 % of the median at the end; at least 30 s (half of a short run), at most
 * half the run. Its bounded caches fill for minutes at the soak's rate (2,000 folded states per
 * aggregate, 10,000 verified tokens, 32 MB of query answers), which is not what the RSS check is
 * after. A leak never levels off: its growth is then judged over the second half of the run,
 * and the rate it still grows at in the last quarter (see `rssCheck`).
 * The projector (killed twice): a quarter of the run, at most a minute.
 */
export function warmUpEnd(memory: MemoryMedians, role: Role, loadMs: number): number {
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
 */
export function rssCheck(memory: MemoryMedians, loadMs: number): Check {
  const window = medianWindow(loadMs);
  const problems: string[] = [];
  const parts: string[] = [];
  for (const role of ['command', 'query', 'projector'] as const satisfies readonly Role[]) {
    const warmedUp = warmUpEnd(memory, role, loadMs);
    const after = withoutCache(memory, role, warmedUp, warmedUp + window);
    const end = withoutCache(memory, role, loadMs - window, loadMs + 1);
    if (after === undefined || end === undefined) {
      problems.push(`${role}: no RSS samples`);
      continue;
    }
    const growth = end / after - 1;
    // The projector is killed twice, so its growth says little; it is shown, not judged.
    const judged = role !== 'projector';
    const late = loadMs >= lateGrowthMinLoadMs ? lateGrowth(memory, role, loadMs, end) : undefined;
    const lateText = late === undefined ? '' : `, ${late.mbPerMinute.toFixed(1)} MB/min in the last quarter`;
    parts.push(`${role} ${after.toFixed(0)} → ${end.toFixed(0)} MB after ${seconds(warmedUp)} (${percent(growth)}${lateText}${judged ? '' : ', restarted, not judged'})`);
    if (!judged) continue;
    if (growth >= rssGrowthLimit) problems.push(`${role} RSS grew ${percent(growth)} after warm-up (limit ${rssGrowthLimit * 100} %)`);
    if (late && late.projected >= rssGrowthLimit) {
      problems.push(
        `${role} RSS still grew ${late.mbPerMinute.toFixed(1)} MB/min in the last quarter: kept up from ${seconds(late.sinceMs)}, ${percent(late.projected)} (limit ${rssGrowthLimit * 100} %)`,
      );
    }
  }
  return checkOf(
    `RSS after warm-up grew < ${rssGrowthLimit * 100} %`,
    `medians over ${seconds(window)} once the heap in use levelled off, and at the end, less what the query cache held: ${parts.join('; ')}`,
    problems,
  );
}

/**
 * `role`'s RSS over [fromMs, toMs), less what its query cache held then: the cache is bounded
 * (`QUERY_CACHE_MB`) and at the soak's rate fills for the whole of a ten-minute run, which is
 * growth but no leak. A role without a query cache holds nothing in one.
 */
function withoutCache(memory: MemoryMedians, role: Role, fromMs: number, toMs: number): number | undefined {
  const rss = memory.median(role, 'rss', fromMs, toMs);
  return rss === undefined ? undefined : rss - (memory.median(role, 'cache', fromMs, toMs) ?? 0);
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
