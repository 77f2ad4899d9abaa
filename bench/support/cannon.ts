import autocannon, { type Request } from 'autocannon';

/** What one autocannon run gives a bench: rate, latency percentiles in ms, failures. */
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
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors, non2xx: result.non2xx };
}
