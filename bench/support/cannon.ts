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
    });
  if (load.warmupSeconds) await run(load.warmupSeconds);
  const result = await run(load.seconds);
  // Answered with 2xx per second: autocannon's request rate counts every answer, its latencies
  // only 2xx, and a refusal is no throughput.
  return { rps: result['2xx'] / result.duration, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors, non2xx: result.non2xx };
}
