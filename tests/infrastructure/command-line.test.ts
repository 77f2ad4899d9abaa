import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { childEnv } from '../support/child-env.js';

const run = promisify(execFile);

/** A script as `npm run migrate`, `npm run replay` and friends run it; answers exit code and stderr. */
async function script(path: string, args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, ['--import', 'tsx', path, ...args], { timeout: 20_000, env: childEnv(env) });
    return { code: 0, stderr: '' };
  } catch (error) {
    const failed = error as { code?: number; stderr?: string };
    return { code: failed.code ?? -1, stderr: failed.stderr ?? '' };
  }
}

/** Refused with `code`, the message and the usage, and no stack trace. */
function expectRefused({ code, stderr }: { code: number; stderr: string }, expectedCode: number, message: RegExp, usage: string): void {
  expect(code).toBe(expectedCode);
  expect(stderr).toMatch(message);
  expect(stderr).toContain(usage);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('the command line', () => {
  it.each([
    [['migrat'], /unknown command migrat/],
    [['--role', 'foo'], /--role foo: must be one of/],
    [['--rol', 'x'], /Unknown option '--rol'/],
    [['--role'], /argument missing/],
    [['seed', '--demo', '--no-demo'], /--demo and --no-demo: give one of them/],
    [['migrate', '--no-demo'], /--no-demo is an option of seed only/],
  ])('refuses %j with a message and the usage, exit 1, starting nothing', async (args, message) => {
    expectRefused(await script('src/infrastructure/main.ts', args), 1, message, 'usage: main');
  });

  it('checks the settings for the role --role names, not for ROLE: the ports its one process listens on', async () => {
    // Nothing listens on port 1: had the settings passed, start-up would fail there instead.
    const env = { ROLE: 'command', COMMAND_PORT: '4999', QUERY_PORT: '4999', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' };
    const { code, stderr } = await script('src/infrastructure/main.ts', ['--role', 'all'], env);

    expect(code).toBe(1);
    expect(stderr).toMatch(/QUERY_PORT: 4999 is COMMAND_PORT too/);
  });

  it.each([
    [['--stream'], /argument missing/],
    [['--foo', 'x'], /Unknown option '--foo'/],
    [['--stream', 'listing-x', '--version', ''], /whole number/],
  ])('of replay refuses %j with the usage, exit 2, reading nothing', async (args, message) => {
    expectRefused(await script('src/infrastructure/audit/replay.cli.ts', args), 2, message, 'usage: npm run replay');
  });
});
