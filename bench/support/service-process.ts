import { execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { freePort } from '../../src/infrastructure/postgres/embedded-postgres.js';
import { benchAuthEnv } from './bench-auth.js';
import { sleep } from '../../src/application/sleep.js';

// The service as benches run it: its own processes on 127.0.0.1, started with `node` rather than
// through npm, so that the pid we hold (to signal, to read RSS) is the service's.

const nodeArgs = () => (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** Spawns `node --import tsx ...args` (a TypeScript script); `BENCH_NODE_ARGS` adds node options (e.g. --cpu-prof). */
export function spawnScript(args: readonly string[], env: Record<string, string>, stdio: StdioOptions = ['ignore', 'ignore', 'inherit']): ChildProcess {
  return spawn(process.execPath, [...nodeArgs(), '--import', 'tsx', ...args], { env: { ...process.env, ...env }, stdio });
}

let startArgs: string[] | undefined;

/**
 * The node arguments of `npm start` (its heap settings, the built entry point), after building
 * `dist/` once per bench (well under a second): benches run what a deployment runs.
 */
function npmStartArgs(): string[] {
  if (startArgs) return startArgs;
  const { scripts } = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
  const [command, ...args] = (scripts.start ?? '').split(' ');
  if (command !== 'node') throw new Error(`npm start runs ${command}, not node: the benches cannot run it as it is`);
  execFileSync('npm', ['run', '--silent', 'build'], { stdio: ['ignore', 'ignore', 'inherit'] });
  return (startArgs = args);
}

/** Spawns the service with `args` (e.g. its role) as `npm start` runs it. */
export function spawnService(args: readonly string[], env: Record<string, string>, stdio: StdioOptions = ['ignore', 'ignore', 'inherit']): ChildProcess {
  return spawn(process.execPath, [...nodeArgs(), ...npmStartArgs(), ...args], { env: { ...process.env, ...env }, stdio });
}

/** Resolves once every one of `readyUrls` answers 200; throws if the process exits first or 120 s pass. */
export async function waitUntilReady(child: ChildProcess, readyUrls: readonly string[], what: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (const url of readyUrls) {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error(`${url} not ready in time`);
      const ok = await fetch(url).then((response) => response.ok, () => false);
      if (ok) break;
      await sleep(200);
    }
  }
}

/** Starts a TypeScript server script and resolves once every one of `readyUrls` answers 200. */
export async function start(args: string[], env: Record<string, string>, readyUrls: string[]): Promise<ChildProcess> {
  const child = spawnScript(args, env);
  await waitUntilReady(child, readyUrls, args.join(' '));
  return child;
}

/** SIGTERM (the graceful shutdown) or SIGKILL, and waits for the exit. */
export async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((resolve) => {
    child.once('exit', resolve);
    child.kill(signal);
  });
}

/** Resident set size of a live process in MB (Linux), 0 when it is gone. */
export async function rssOf(pid: number | undefined): Promise<number> {
  if (pid === undefined) return 0;
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/**
 * The service in `role` (both APIs in the `all` role) on `databaseUrl`, as a bench loads it: quiet
 * logs, no rate limit, accepting `token()`'s tokens; resolves once both APIs are ready.
 */
export async function startBenchService(databaseUrl: string, role = 'all'): Promise<{ child: ChildProcess; commands: string; queries: string }> {
  const [commandPort, queryPort] = [await freePort(), await freePort()];
  const [commands, queries] = [`http://127.0.0.1:${commandPort}`, `http://127.0.0.1:${queryPort}`];
  const env = {
    DATABASE_URL: databaseUrl,
    COMMAND_PORT: String(commandPort),
    QUERY_PORT: String(queryPort),
    ...benchAuthEnv,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_MAX: '100000000',
    DATABASE_POOL_SIZE: '20',
  };
  const ready = [...(role === 'all' || role === 'command' ? [`${commands}/health/ready`] : []), ...(role === 'all' || role === 'query' ? [`${queries}/health/ready`] : [])];
  const child = spawnService(['--role', role], env);
  await waitUntilReady(child, ready, `the ${role} role`);
  return { child, commands, queries };
}
