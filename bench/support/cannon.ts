import autocannon, { type Request } from 'autocannon';

/** What one autocannon run gives a bench: 2xx rate, latency percentiles (of 2xx) in ms, failures. */
export type Run = { rps: number; p50: number; p99: number; errors: number; non2xx: number };

/**
 * autocannon against `url` for `seconds` over `connections` connections, JSON by default; first,
 * unmeasured, `warmupSeconds` of the same load, so that a figure is the server's steady state
 * rather than its JIT compiler and cold caches (the same for every server measured).
 */
export async function cannon(
  url: string,
  load: { seconds: number; connections: number; warmupSeconds?: number },
  options: { requests?: Request[]; method?: 'GET' | 'POST'; body?: string; headers?: Record<string, string> } = {},
): Promise<Run> {
  const run = (duration: number) =>
    autocannon({
      url,
      connections: load.connections,
      duration,
      ...(options.requests ? { requests: options.requests } : {}),
      ...(options.method ? { method: options.method } : {}),
      ...(options.body ? { body: options.body } : {}),
      headers: { 'content-type': 'application/json', ...options.headers },
      // autocannon's latencies count every answer by default: a refusal answered at once (a 503
      // shed, a 409) would pull p50 and p99 below what any accepted request took.
      excludeErrorStats: true,
    });
  if (load.warmupSeconds) await run(load.warmupSeconds);
  const result = await run(load.seconds);
  // Answered with 2xx per second: autocannon's request rate counts every answer, and a refusal is
  // no throughput; its latencies are of 2xx only (`excludeErrorStats`).
  return { rps: result['2xx'] / result.duration, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors, non2xx: result.non2xx };
}

/** ` (N errors, M non-2xx)` when a run had any, else nothing: a figure of a run with refusals is not the figure it looks. */
export function failuresOf(run: Pick<Run, 'errors' | 'non2xx'>): string {
  return run.errors + run.non2xx > 0 ? ` (${run.errors} errors, ${run.non2xx} non-2xx)` : '';
}

/** One run as one line: 2xx per second, p50 and p99 of the 2xx, and failures if any. */
export function runLine(label: string, run: Run): string {
  const ms = (value: number) => Number(value.toFixed(1));
  return `${label}: ${Math.round(run.rps).toLocaleString('en-US')} req/s, p50 ${ms(run.p50)} ms, p99 ${ms(run.p99)} ms${failuresOf(run)}`;
}
