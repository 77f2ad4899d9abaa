import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, inject, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Runs `bench/soak.ts` as `npm run soak` would, on a throwaway database of the run's PostgreSQL server. */
function soak(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  // Never the developer's own DATABASE_URL: the soak writes a great deal.
  const { DATABASE_URL: _ignored, ...env } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/soak.ts', ...args], {
    cwd: root,
    env: { ...env, TEST_DATABASE_URL: inject('adminDatabaseUrl') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })));
}

describe('soak (issue 8), the one-minute version CI runs', () => {
  it('passes every check after a minute of mixed load, a rebuild and two projector kills', { timeout: 240_000 }, async () => {
    const { code, output } = await soak(['--minutes', '1']);
    expect(code, output).toBe(0);
    expect(output).toMatch(/^PASS$/m);
  });
});
