import { z } from 'zod';
import { percentile } from './bench-database.js';

// Every request of the soak goes through one `Traffic`, which counts what came back per route,
// and sorts the 5xx: a 503 `overloaded` or `not-caught-up` with `Retry-After` is the service
// shedding on purpose (load, or read models not caught up within the consistency wait); anything
// else is a failure of the run. Whether the read models had any excuse to be behind is another
// question: the `not-caught-up` answers are kept, with when they came, for the read-your-writes
// check to hold against the chaos (see `judgeNotCaughtUp`).

export type Api = 'command' | 'query';

export type SoakRequest = {
  readonly api: Api;
  readonly method: 'GET' | 'POST' | 'PUT';
  /** The route as counted, e.g. `GET /v1/bookings/:id`. */
  readonly route: string;
  readonly path: string;
  readonly body?: unknown;
  /** A raw body sent as is (a signed webhook). */
  readonly rawBody?: string;
  readonly bearer?: string;
  readonly headers?: Readonly<Record<string, string>>;
};

export type Reply = { readonly status: number; readonly headers: Headers; readonly json: unknown };

/**
 * A 503 `not-caught-up`: a read whose `Consistency-Position` the read models did not reach within
 * the wait, sent (its wait began) at `waitStartedAt` and answered at `at` (`performance.now()` ms);
 * `lagging` says which read models were short of the position then.
 */
export type NotCaughtUp = { readonly waitStartedAt: number; readonly at: number; readonly what: string; readonly lagging: string };

/** Which read models are short of `position` (as a `Consistency-Position` header gives it) now. */
export type LagProbe = (position: string) => Promise<string>;

type RouteStats = { statuses: Map<number, number>; latencies: number[] };

const problemType = z.object({ type: z.string() });

/** Long enough for any answer the service means to give (the consistency wait is 5 s). */
const requestTimeoutMs = 30_000;

export class Traffic {
  private readonly routes = new Map<string, RouteStats>();
  /** Examples of what went wrong: an unexpected 5xx, or no answer at all. */
  readonly failures: string[] = [];
  failureCount = 0;
  /** When each deliberate 503 came, by problem type (`not-caught-up`, `overloaded`), in `performance.now()` ms. */
  private readonly shed = new Map<string, number[]>();
  /** Every 503 `not-caught-up`, answered at `at` (`performance.now()` ms). */
  readonly notCaughtUp: NotCaughtUp[] = [];

  constructor(
    private readonly bases: Readonly<Record<Api, string>>,
    private readonly lagging: LagProbe = async () => '?',
  ) {}

  async send(request: SoakRequest): Promise<Reply | undefined> {
    const started = performance.now();
    const headers: Record<string, string> = { ...request.headers };
    if (request.bearer) headers.authorization = `Bearer ${request.bearer}`;
    const body = request.rawBody ?? (request.body === undefined ? undefined : JSON.stringify(request.body));
    if (body !== undefined) headers['content-type'] ??= 'application/json';
    try {
      const response = await fetch(`${this.bases[request.api]}${request.path}`, {
        method: request.method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
      const text = await response.text();
      const reply = { status: response.status, headers: response.headers, json: parseJson(text) };
      this.count(request.route, reply.status, performance.now() - started);
      if (reply.status >= 500) await this.classify(request, reply, text, started);
      return reply;
    } catch (error) {
      this.count(request.route, 0, performance.now() - started);
      this.fail(`${request.route}: no answer (${error instanceof Error ? error.message : String(error)})`);
      return undefined;
    }
  }

  get requests(): number {
    let total = 0;
    for (const stats of this.routes.values()) for (const count of stats.statuses.values()) total += count;
    return total;
  }

  /** How many deliberate 503s of `kind` (`overloaded`, `not-caught-up`) came. */
  shedCount(kind: string): number {
    return this.shed.get(kind)?.length ?? 0;
  }

  /** The deliberate 503s per problem type, with when the first and the last came (seconds after `since`). */
  shedSummary(since: number): string {
    const at = (ms: number) => ((ms - since) / 1000).toFixed(0);
    const kinds = [...this.shed].map(([kind, times]) => `${kind} ×${times.length} (${at(times[0] ?? since)}–${at(times.at(-1) ?? since)} s)`);
    return kinds.join(', ') || 'none';
  }

  /** One line per route: how many, by status, and latency percentiles. */
  summary(): string[] {
    return [...this.routes.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([route, stats]) => {
        const statuses = [...stats.statuses.entries()].sort(([a], [b]) => a - b).map(([status, count]) => `${status || 'no answer'} ×${count.toLocaleString('en-US')}`);
        const total = [...stats.statuses.values()].reduce((sum, count) => sum + count, 0);
        const p50 = percentile(stats.latencies, 50).toFixed(0);
        const p99 = percentile(stats.latencies, 99).toFixed(0);
        return `${route}: ${total.toLocaleString('en-US')} (${statuses.join(', ')}), p50 ${p50} ms, p99 ${p99} ms`;
      });
  }

  private fail(what: string): void {
    this.failureCount += 1;
    if (this.failures.length < 20) this.failures.push(what);
  }

  private count(route: string, status: number, ms: number): void {
    let stats = this.routes.get(route);
    if (!stats) {
      stats = { statuses: new Map(), latencies: [] };
      this.routes.set(route, stats);
    }
    stats.statuses.set(status, (stats.statuses.get(status) ?? 0) + 1);
    stats.latencies.push(ms);
  }

  private async classify(request: SoakRequest, reply: Reply, text: string, started: number): Promise<void> {
    const { route } = request;
    const parsed = problemType.safeParse(reply.json);
    const kind = parsed.success ? (parsed.data.type.split('/').pop() ?? parsed.data.type) : 'unknown';
    // Deliberate: load shed, or a read waiting for its position. A 503 of any other kind (too
    // much contention, the access log or a provider unavailable) is a failure, Retry-After or not.
    if (reply.status === 503 && reply.headers.has('retry-after') && deliberateKinds.has(kind)) {
      const times = this.shed.get(kind) ?? [];
      times.push(performance.now());
      this.shed.set(kind, times);
      if (kind === 'not-caught-up') {
        const at = performance.now();
        const position = request.headers?.['consistency-position'] ?? '?';
        const lagging = await this.lagging(position).catch((error: unknown) => `? (${error instanceof Error ? error.message : String(error)})`);
        this.notCaughtUp.push({ waitStartedAt: started, at, what: `${request.path} after ${position}`, lagging });
      }
      return;
    }
    this.fail(`${route}: ${reply.status} ${text.slice(0, 300)}`);
  }
}

const deliberateKinds = new Set(['overloaded', 'not-caught-up']);

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
