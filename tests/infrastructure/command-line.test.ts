import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterEach, describe, expect, inject, it, vi } from 'vitest';
import { CommandFailed, failureReport, usageExitCode, UsageError } from '../../src/infrastructure/config/command-line.js';
import { ConfigError } from '../../src/infrastructure/config/config.js';
import { mainUsage, parseMainCommandLine } from '../../src/infrastructure/main-command-line.js';
import { readModelProjections } from '../../src/projections/read-models.js';
import { childEnv } from '../support/child-env.js';

const run = promisify(execFile);

/** A script as `npm run migrate`, `npm run replay` and friends run it; answers exit code, stdout and stderr. */
async function script(path: string, args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', path, ...args], { timeout: 20_000, env: childEnv(env) });
    return { code: 0, stdout, stderr: '' };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

/** Refused with `code`, the message and the usage, and no stack trace. */
function expectRefused({ code, stderr }: { code: number; stderr: string }, expectedCode: number, message: RegExp, usage: string): void {
  expect(code).toBe(expectedCode);
  expect(stderr).toMatch(message);
  expect(stderr).toContain(usage);
  expect(stderr).not.toMatch(/\n\s+at /);
}

/** Nothing listens there: a tool that got as far as the database would fail on it instead. */
const unreachable = { DATABASE_URL: 'postgres://postgres:s3cret-pw@127.0.0.1:5999/x' };

const main = (args: string[]) => parseMainCommandLine(readModelProjections, args);

describe("main's command line", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it.each([
    [['migrat'], /unknown command migrat/],
    [['--role', 'foo'], /--role foo: must be one of/],
    [['--rol', 'x'], /Unknown option '--rol'/],
    [['--role'], /argument missing/],
    [['seed', '--demo', '--no-demo'], /--demo and --no-demo: give one of them/],
    [['migrate', '--no-demo'], /--no-demo is an option of seed only/],
    [['migrate', 'extra'], /migrate takes no arguments; unexpected extra/],
    [['seed', 'extra'], /seed takes no arguments; unexpected extra/],
    [['rebuild'], /name a read model to rebuild: .*listings/],
    [['rebuild', 'nothing'], /no read model nothing: one of .*listings/],
    [['rebuild', 'listings', 'extra'], /rebuild takes one read model; unexpected extra/],
    [['seed', '--role', 'command'], /--role is an option of the service only, not of seed/],
    [['rebuild', 'listings', '--role', 'projector'], /--role is an option of the service only, not of rebuild/],
  ])('refuses %j as a usage error, with the message and the usage', (args, message) => {
    expect(() => main(args)).toThrow(UsageError);
    expect(() => main(args)).toThrow(message);
    expect(() => main(args)).toThrow(mainUsage);
  });

  it.each([
    [[], { command: 'start', role: undefined }],
    [['--role', 'query'], { command: 'start', role: 'query' }],
    [['seed', '--no-demo'], { command: 'seed', demo: false }],
    [['migrate'], { command: 'migrate' }],
    [['rebuild', 'listings'], { command: 'rebuild', projection: expect.objectContaining({ name: 'listings' }) }],
  ])('reads %j', (args, command) => {
    expect(main(args)).toEqual(command);
  });

  it('given --help, prints the usage on stdout and asks for nothing to be done, whatever else is on the line', () => {
    const written = vi.spyOn(process.stdout, 'write').mockReturnValue(true);

    expect(main(['migrate', 'extra', '--help'])).toBeUndefined();

    expect(written).toHaveBeenCalledWith(`${mainUsage}\n`);
  });

  it('ends a usage error with exit 64, before reading any setting or opening anything', async () => {
    expectRefused(await script('src/infrastructure/main.ts', ['migrate', 'extra'], unreachable), usageExitCode, /migrate takes no arguments/, 'usage: main');
  });

  it('checks the settings for the role --role names, not for ROLE: the ports its one process listens on', async () => {
    // Nothing listens on port 1: had the settings passed, start-up would fail there instead.
    const env = { ROLE: 'command', COMMAND_PORT: '4999', QUERY_PORT: '4999', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' };
    const { code, stderr } = await script('src/infrastructure/main.ts', ['--role', 'all'], env);

    expect(code).toBe(1);
    expect(stderr).toMatch(/QUERY_PORT: 4999 is COMMAND_PORT too/);
  });
});

// Child processes that wait on nothing but their own start-up: run side by side.
describe.concurrent('the audit command-line tools', () => {
  it.each([
    [['--stream'], /argument missing/],
    [['--foo', 'x'], /Unknown option '--foo'/],
    [['--stream', 'listing-x', '--version', ''], /whole number/],
  ])('replay refuses %j with the usage, exit 64, reading nothing', async (args, message) => {
    expectRefused(await script('src/infrastructure/audit/replay.cli.ts', args, unreachable), usageExitCode, message, 'usage: npm run replay');
  });

  // A typo in a cron job ran the whole check, and its exit code spoke of other streams' breaks.
  it.each([
    [['--stream', 'listing-x'], /Unknown option '--stream'/],
    [['listing-x'], /Unexpected argument 'listing-x'/],
  ])('audit:verify refuses %j with the usage, exit 64, checking nothing', async (args, message) => {
    expectRefused(await script('src/infrastructure/audit/audit-verify.cli.ts', args, unreachable), usageExitCode, message, 'usage: npm run audit:verify');
  });

  it('audit:verify --help prints the usage and exits 0, checking nothing', async () => {
    const { code, stdout } = await script('src/infrastructure/audit/audit-verify.cli.ts', ['--help'], unreachable);

    expect(code).toBe(0);
    expect(stdout).toMatch(/^usage: npm run audit:verify/);
  });
});

describe('a database that cannot be reached', () => {
  it('is one line naming the server and the database, not the password, with each tool\'s failure code', async () => {
    const [migrate, verify, replay] = await Promise.all([
      script('src/infrastructure/main.ts', ['migrate'], unreachable),
      script('src/infrastructure/audit/audit-verify.cli.ts', [], unreachable),
      script('src/infrastructure/audit/replay.cli.ts', ['--stream', 'listing-x'], unreachable),
    ]);

    const line = 'cannot connect to PostgreSQL at 127.0.0.1:5999, database x: connect ECONNREFUSED 127.0.0.1:5999\n';
    expect([migrate, verify, replay]).toEqual([
      { code: 1, stdout: '', stderr: line },
      { code: 3, stdout: '', stderr: line },
      { code: 2, stdout: '', stderr: line },
    ]);
  });

  it('named by a URL with a bare % (pg takes it as written): the same one line, not a URIError from the report', async () => {
    const { code, stdout, stderr } = await script('src/infrastructure/audit/audit-verify.cli.ts', [], { DATABASE_URL: 'postgres://u:s3cret-pw@127.0.0.1:5999/db%zz' });

    expect({ code, stdout, stderr }).toEqual({ code: 3, stdout: '', stderr: 'cannot connect to PostgreSQL at 127.0.0.1:5999, database db%zz: connect ECONNREFUSED 127.0.0.1:5999\n' });
  });
});

/** What the driver throws for `url` on connecting. */
async function connectionError(url: string): Promise<unknown> {
  const client = new pg.Client(url);
  try {
    await client.connect();
  } catch (error) {
    return error;
  } finally {
    await client.end().catch(() => undefined);
  }
  throw new Error(`${url} let the login in`);
}

describe('how a command-line tool reports a failure', () => {
  const failedCode = 3;

  it('a refused connection, as the driver reports it and wrapped: one line naming host, port and database, never the password', async () => {
    const databaseUrl = 'postgres://postgres:s3cret-pw@127.0.0.1:5999/orders';
    const refused = await connectionError(databaseUrl);
    const expected = { code: failedCode, text: 'cannot connect to PostgreSQL at 127.0.0.1:5999, database orders: connect ECONNREFUSED 127.0.0.1:5999' };

    expect(failureReport(refused, { failedCode, databaseUrl })).toEqual(expected);
    expect(failureReport(new Error('could not open storage', { cause: refused }), { failedCode, databaseUrl })).toEqual(expected);
  });

  it('a database that does not exist (3D000) and a login refused (28000, 28P01): one line', async () => {
    const server = new URL(inject('adminDatabaseUrl'));
    const missing = new URL(server);
    missing.pathname = '/no_such_database';
    const stranger = new URL(server);
    stranger.username = 'no_such_role';
    stranger.password = 's3cret-pw';
    const at = `at ${server.hostname}:${server.port || '5432'}`;

    expect(failureReport(await connectionError(missing.toString()), { failedCode, databaseUrl: missing.toString() })).toEqual({
      code: failedCode,
      text: `cannot connect to PostgreSQL ${at}, database no_such_database: database "no_such_database" does not exist`,
    });
    const refused = failureReport(await connectionError(stranger.toString()), { failedCode, databaseUrl: stranger.toString() });
    expect(refused.text).toMatch(new RegExp(`^cannot connect to PostgreSQL ${at}, database [^:]+: .*"no_such_role"`));
    expect(refused.text).not.toContain('s3cret-pw');
  });

  it('a host that does not resolve, a server that does not answer (without DATABASE_URL: where the error says it tried): one line', () => {
    const notFound = Object.assign(new Error('getaddrinfo ENOTFOUND db.invalid'), { code: 'ENOTFOUND', hostname: 'db.invalid' });
    const timedOut = Object.assign(new Error('connect ETIMEDOUT 10.0.0.9:5432'), { code: 'ETIMEDOUT', address: '10.0.0.9', port: 5432 });

    expect(failureReport(notFound, { failedCode, databaseUrl: 'postgres://u:p@db.invalid/app' }).text).toBe('cannot connect to PostgreSQL at db.invalid:5432, database app: getaddrinfo ENOTFOUND db.invalid');
    expect(failureReport(timedOut, { failedCode, databaseUrl: undefined }).text).toBe('cannot connect to PostgreSQL at 10.0.0.9:5432: connect ETIMEDOUT 10.0.0.9:5432');
  });

  it('a database or user name with a bare %: named as written, as pg takes it, never the password', async () => {
    for (const [databaseUrl, database] of [
      ['postgres://u:s3cret-pw@127.0.0.1:5999/100%off', '100%off'],
      ['postgres://u%zz:s3cret-pw@127.0.0.1:5999', 'u%zz'],
      ['postgres://u:s3cret-pw@127.0.0.1:5999/caf%C3%A9', 'café'],
    ] as const) {
      expect(failureReport(await connectionError(databaseUrl), { failedCode, databaseUrl })).toEqual({
        code: failedCode,
        text: `cannot connect to PostgreSQL at 127.0.0.1:5999, database ${database}: connect ECONNREFUSED 127.0.0.1:5999`,
      });
    }
  });

  it('a port where something else than PostgreSQL answers (it hangs up at once): one line, connecting or not', async () => {
    const notPostgres = createServer((socket) => socket.destroy());
    await new Promise<void>((listening) => notPostgres.listen(0, '127.0.0.1', listening));
    try {
      const address = notPostgres.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      const databaseUrl = `postgres://u:s3cret-pw@127.0.0.1:${port}/orders`;

      // The same words when the server goes away in the middle of a long command: the connection broke either way.
      expect(failureReport(await connectionError(databaseUrl), { failedCode, databaseUrl })).toEqual({
        code: failedCode,
        text: `connection to PostgreSQL at 127.0.0.1:${port}, database orders broke: Connection terminated unexpectedly`,
      });
    } finally {
      await new Promise((closed) => notPostgres.close(closed));
    }
  });

  it('sslmode=require against the test server: one line, whether it has no SSL or a certificate nobody vouches for', async () => {
    const url = new URL(inject('adminDatabaseUrl'));
    url.searchParams.set('sslmode', 'require');
    const databaseUrl = url.toString();

    const { code, text } = failureReport(await connectionError(databaseUrl), { failedCode, databaseUrl });

    expect(code).toBe(failedCode);
    expect(text).toMatch(new RegExp(`^cannot connect to PostgreSQL at ${url.hostname}:${url.port || '5432'}, database [^:]+: [^\n]+$`));
  });

  it.each([
    ['SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'],
    ['CERT_HAS_EXPIRED', 'certificate has expired'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames: Host: db.internal. is not in the cert's altnames: DNS:other"],
  ])("a server certificate refused (%s): one line, the driver's words", (code, message) => {
    const databaseUrl = 'postgres://u:s3cret-pw@db.internal:5432/app?sslmode=verify-full';

    expect(failureReport(Object.assign(new Error(message), { code }), { failedCode, databaseUrl })).toEqual({
      code: failedCode,
      text: `cannot connect to PostgreSQL at db.internal:5432, database app: ${message}`,
    });
  });

  it('a connection reset or written to after the server closed it: one line', () => {
    const databaseUrl = 'postgres://u:s3cret-pw@db.internal:5432/app';
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104, syscall: 'read' });
    const pipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE', errno: -32, syscall: 'write' });

    expect(failureReport(reset, { failedCode, databaseUrl }).text).toBe('connection to PostgreSQL at db.internal:5432, database app broke: read ECONNRESET');
    expect(failureReport(pipe, { failedCode, databaseUrl }).text).toBe('connection to PostgreSQL at db.internal:5432, database app broke: write EPIPE');
  });

  it("pg's codeless messages only as pg words them: an error that merely mentions one keeps its stack", () => {
    const noSsl = new Error('The server does not support SSL connections');
    const mentions = new Error('retrying after: Connection terminated unexpectedly');

    expect(failureReport(noSsl, { failedCode, databaseUrl: undefined }).text).toBe('cannot connect to PostgreSQL (the embedded one): The server does not support SSL connections');
    expect(failureReport(mentions, { failedCode, databaseUrl: undefined }).text).toBe(mentions.stack);
  });

  it('never throws: when the error cannot be described, the failure code and a plain line still', () => {
    const hostileCode = new Error('disk on fire');
    Object.defineProperty(hostileCode, 'code', {
      get() {
        throw new Error('no code here');
      },
    });
    const hostileText = {
      toString() {
        throw new Error('no text here');
      },
    };

    expect(failureReport(hostileCode, { failedCode, databaseUrl: undefined })).toEqual({ code: failedCode, text: 'disk on fire' });
    expect(failureReport(hostileText, { failedCode, databaseUrl: undefined })).toEqual({ code: failedCode, text: 'failed, with an error that cannot be shown' });
  });

  it('wrong arguments: the usage exit code; a setting, an expected failure: their message alone; anything else: its stack', () => {
    const bug = new TypeError('x is undefined');

    expect(failureReport(new UsageError('unknown command x', 'usage: main'), { failedCode, databaseUrl: undefined })).toEqual({ code: usageExitCode, text: 'unknown command x\nusage: main' });
    expect(failureReport(new ConfigError('MASTER_KEY: required'), { failedCode, databaseUrl: undefined })).toEqual({ code: failedCode, text: 'MASTER_KEY: required' });
    expect(failureReport(new CommandFailed('rebuild of users failed'), { failedCode, databaseUrl: undefined })).toEqual({ code: failedCode, text: 'rebuild of users failed' });
    expect(failureReport(bug, { failedCode, databaseUrl: undefined })).toEqual({ code: failedCode, text: bug.stack });
  });
});
