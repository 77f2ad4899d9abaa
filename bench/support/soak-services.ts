import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../../src/infrastructure/postgres/embedded-postgres.js';
import { benchAuthEnv } from './bench-auth.js';
import { rssOf, spawnService, stop, waitUntilReady } from './service-process.js';
import type { MemoryMedians } from './soak-memory.js';

// The service as the soak runs it: one process per role against one PostgreSQL, each writing
// its log to a file of its own. The projector is the one that gets killed and started again.

export type Role = 'command' | 'query' | 'projector';

export type ServiceSettings = {
  readonly databaseUrl: string;
  /** Where the processes write their logs and the secrets they generate (`DATA_DIR`). */
  readonly workDir: string;
  /** Everything else the processes need (Stripe, hold times). */
  readonly env: Readonly<Record<string, string>>;
};

/** What each query process's cache may hold (`QUERY_CACHE_MB`), as the soak starts it: the service's default. */
export const soakQueryCacheMb = 32;

export class SoakServices {
  private readonly processes = new Map<Role, ChildProcess>();
  /** When each role's current process was spawned (`performance.now()` ms). */
  private readonly started = new Map<Role, number>();
  private readonly exits: { role: Role; code: number | null; signal: string | null; expected: boolean }[] = [];
  private readonly killing = new Set<ChildProcess>();
  private starts = 0;
  /** Set by `stopAll`: nothing starts after it, not even a projector a chaos step was restarting. */
  private stopping = false;

  private constructor(
    private readonly settings: ServiceSettings,
    readonly ports: { readonly command: number; readonly query: number; readonly projector: number },
  ) {}

  /** Ports chosen, nothing running yet: whoever stops the soak early can `stopAll` from here on. */
  static async create(settings: ServiceSettings): Promise<SoakServices> {
    return new SoakServices(settings, { command: await freePort(), query: await freePort(), projector: await freePort() });
  }

  /** Starts every role; resolves once the APIs are ready. */
  async start(): Promise<void> {
    // The command process applies the migrations before the others start, so that none races it.
    await this.startRole('command', [`${this.url('command')}/health/ready`]);
    await Promise.all([this.startRole('query', [`${this.url('query')}/health/ready`]), this.startRole('projector', [])]);
  }

  url(role: 'command' | 'query'): string {
    return `http://127.0.0.1:${this.ports[role]}`;
  }

  pid(role: Role): number | undefined {
    return this.processes.get(role)?.pid;
  }

  /** When `role`'s current process was spawned, in `performance.now()` ms. */
  startedAt(role: Role): number {
    return this.started.get(role) ?? 0;
  }

  /**
   * SIGKILL, as a crash or the OOM killer would: no graceful anything. Then a fresh process, once
   * `whileDown` (a look at what the dead process left) has run.
   */
  async killAndRestartProjector(whileDown: () => Promise<void> = async () => undefined): Promise<void> {
    const projector = this.processes.get('projector');
    if (projector) {
      this.killing.add(projector);
      await stop(projector, 'SIGKILL');
    }
    await whileDown();
    await this.startRole('projector', []);
  }

  /** True once `stopAll` has begun: the soak is ending, early or not. */
  get stopped(): boolean {
    return this.stopping;
  }

  /** Exits nobody asked for (a crash during the run). */
  get unexpectedExits(): string[] {
    return this.exits.filter((exit) => !exit.expected).map((exit) => `${exit.role} exited by itself (code ${exit.code}, signal ${exit.signal})`);
  }

  /**
   * SIGTERM to every role; the graceful shutdown must end each with exit code 0 within
   * `graceMs`, after which it is SIGKILLed (and that is a problem too). Nothing starts after.
   */
  async stopAll(graceMs = 30_000): Promise<string[]> {
    this.stopping = true;
    const problems: string[] = [];
    await Promise.all(
      [...this.processes].map(async ([role, child]) => {
        this.killing.add(child);
        const exited = child.exitCode !== null || child.signalCode !== null;
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await stop(child, 'SIGTERM');
        clearTimeout(timer);
        if (!exited && child.exitCode !== 0) problems.push(`${role} ended with code ${child.exitCode}, signal ${child.signalCode} on SIGTERM`);
      }),
    );
    return problems;
  }

  private async startRole(role: Role, readyUrls: readonly string[]): Promise<void> {
    if (this.stopping) throw new Error(`the soak is stopping: ${role} not started`);
    this.starts += 1;
    const log = openSync(path.join(this.settings.workDir, `${role}-${this.starts}.log`), 'a');
    const child = spawnService(['--role', role], this.env(), ['ignore', log, log]);
    // The child holds its own copy of the descriptor.
    closeSync(log);
    child.once('exit', (code, signal) => this.exits.push({ role, code, signal, expected: this.killing.has(child) }));
    this.processes.set(role, child);
    this.started.set(role, performance.now());
    await waitUntilReady(child, readyUrls, role);
  }

  private env(): Record<string, string> {
    return {
      ...this.settings.env,
      ...benchAuthEnv,
      DATABASE_URL: this.settings.databaseUrl,
      // Secrets generated on first start (the master key) are shared by every role through it.
      DATA_DIR: this.settings.workDir,
      COMMAND_PORT: String(this.ports.command),
      QUERY_PORT: String(this.ports.query),
      PROJECTOR_PORT: String(this.ports.projector),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      RATE_LIMIT_MAX: '100000000',
      // Set, not inherited: the RSS check puts no more than this down to the cache.
      QUERY_CACHE_MB: String(soakQueryCacheMb),
    };
  }
}

/**
 * `rss` from `/proc` for every role; from `/metrics` of the two APIs, `heap` (V8 heap in use) and
 * `external` (buffers outside it), to tell which of them a growing RSS is, and `cache`: what the
 * query cache holds, bounded by `QUERY_CACHE_MB`, which fills for the whole of a ten-minute run.
 * All in bytes of heap: the cache's gauge counts each entry's overhead with its characters, which
 * covers what V8 keeps of them (heap snapshots), so it is subtracted from RSS as it is.
 */
export type Gauge = 'rss' | 'heap' | 'external' | 'cache';
export type MemorySample = { readonly role: Role; readonly gauge: Gauge; readonly atMs: number; readonly mb: number };

const scraped = {
  heap: /^nodejs_heap_size_used_bytes\s+([0-9.e+]+)$/m,
  external: /^nodejs_external_memory_bytes\s+([0-9.e+]+)$/m,
  cache: /^query_cache_bytes\s+([0-9.e+]+)$/m,
} as const;

/** Samples each role's memory once a second: whether RSS grows, and whether the heap is why. */
export class MemorySampler implements MemoryMedians {
  readonly samples: MemorySample[] = [];
  readonly queryCacheMb = soakQueryCacheMb;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly services: SoakServices,
    private readonly since: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.sample(), 1000);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The median of `role`'s `gauge` in [fromMs, toMs) since the load began. */
  median(role: Role, gauge: Gauge, fromMs: number, toMs: number): number | undefined {
    const values = this.samples
      .filter((s) => s.role === role && s.gauge === gauge && s.atMs >= fromMs && s.atMs < toMs && s.mb > 0)
      .map((s) => s.mb)
      .sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)];
  }

  /** The highest sample of `role`'s `gauge`. */
  peak(role: Role, gauge: Gauge): number | undefined {
    let highest: number | undefined;
    for (const s of this.samples) if (s.role === role && s.gauge === gauge && s.mb > (highest ?? 0)) highest = s.mb;
    return highest;
  }

  /** When `role`'s current process started, in ms since the load began (negative: before it). */
  startedMs(role: Role): number {
    return this.services.startedAt(role) - this.since;
  }

  private async sample(): Promise<void> {
    const atMs = performance.now() - this.since;
    for (const role of ['command', 'query', 'projector'] as const) this.samples.push({ role, gauge: 'rss', atMs, mb: await rssOf(this.services.pid(role)) });
    for (const role of ['command', 'query'] as const) {
      const text = await fetch(`${this.services.url(role)}/metrics`).then((response) => response.text(), () => '');
      for (const gauge of ['heap', 'external', 'cache'] as const) {
        this.samples.push({ role, gauge, atMs, mb: Number(scraped[gauge].exec(text)?.[1] ?? 0) / 1024 / 1024 });
      }
    }
  }
}
