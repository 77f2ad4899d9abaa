import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';
import { childEnv } from '../support/child-env.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The soak's own deadline, below the test's timeout: past it the soak says FAIL and what it was
 * waiting for, and stops its services and drops its database, in the time the test has left.
 */
const deadlineSeconds = 200;
const testTimeoutMs = 240_000;
/** How long a soak told to stop (SIGTERM) has to clean up before it is SIGKILLed. */
const stopGraceMs = 30_000;

/**
 * Runs `bench/soak.ts` as `npm run soak` would, on a throwaway database of the run's PostgreSQL
 * server, echoing its output as it comes (a slow or stuck run shows where it is).
 */
function soak(args: readonly string[]): { child: ChildProcess; done: Promise<{ code: number | null; output: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/soak.ts', ...args], {
    cwd: root,
    // Never the developer's own DATABASE_URL: the soak writes a great deal.
    env: childEnv({ TEST_DATABASE_URL: inject('adminDatabaseUrl') }, ['DATABASE_URL']),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    process.stdout.write(chunk);
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    process.stderr.write(chunk);
  });
  return { child, done: new Promise((resolve) => child.once('close', (code) => resolve({ code, output }))) };
}

/** SIGTERM, on which the soak cleans up after itself; SIGKILL if it is still there `stopGraceMs` later. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
  await exited;
  clearTimeout(timer);
}

describe('soak (issue 8), the one-minute version CI runs', () => {
  it('passes every check after a minute of mixed load, a rebuild and two projector kills', { timeout: testTimeoutMs }, async ({ onTestFinished }) => {
    const { child, done } = soak(['--minutes', '1', '--deadline-seconds', String(deadlineSeconds)]);
    // However the test ends (a timeout too), the soak does not outlive it.
    onTestFinished(() => stop(child), stopGraceMs + 5_000);
    const { code, output } = await done;
    expect(output).toMatch(/^PASS$/m);
    expect(code).toBe(0);
  });
});
