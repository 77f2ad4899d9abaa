import { parseArgs, type ParseArgsConfig } from 'node:util';
import { connectionFailure } from '../postgres/connection-failure.js';
import { ConfigError } from './config.js';

/**
 * Every command-line tool's exit code for arguments it does not take (`EX_USAGE` of sysexits.h):
 * 1 to 4 already say what a check found (`audit:verify`), so a typo in a cron job or a CI gate
 * must not pass for one of them.
 */
export const usageExitCode = 64;

/** Arguments the command does not take: its message says which, then how the command goes. */
export class UsageError extends Error {
  override readonly name = 'UsageError';

  constructor(problem: string, usage: string) {
    super(`${problem}\n${usage}`);
  }
}

/** An outcome the command expected and reports in its message alone, no stack trace (a rebuild that failed). */
export class CommandFailed extends Error {
  override readonly name = 'CommandFailed';
}

/**
 * `parseArgs`, with an unknown option or one missing its value answered by a UsageError (message
 * and `usage`) rather than a TypeError's stack. `--help` anywhere prints `usage` on stdout and
 * answers `undefined`: the caller then does nothing more, and exits 0.
 */
export function parseCommandLine<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> | undefined {
  if (asksForHelp(config.args)) {
    process.stdout.write(`${usage}\n`);
    return undefined;
  }
  try {
    return parseArgs(config);
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error), usage);
  }
}

function asksForHelp(args: readonly string[] | undefined): boolean {
  // Not strict: `--help` wins over whatever else is wrong with the line.
  const { values } = parseArgs({ args: args && [...args], options: { help: { type: 'boolean' } }, strict: false, allowPositionals: true });
  return values.help === true;
}

/**
 * How a command-line tool ends on `error`: its exit code (`failedCode` unless the arguments were
 * wrong) and what it prints on stderr. A stack trace only for what nobody expected (a bug): a
 * mistake in the arguments or the settings, an expected failure, and a database that cannot be
 * reached, will not let the login in or broke the connection (`DATABASE_URL` names it) get one
 * line. Never throws: it runs in the tools' last error handler, where a throw would end the tool
 * with node's exit code 1 (`audit:verify`'s "broken chain") and a stack trace of the report's own.
 */
export function failureReport(error: unknown, options: { failedCode: number; databaseUrl: string | undefined }): { code: number; text: string } {
  try {
    return report(error, options);
  } catch {
    return { code: options.failedCode, text: plainText(error) };
  }
}

function report(error: unknown, options: { failedCode: number; databaseUrl: string | undefined }): { code: number; text: string } {
  if (error instanceof UsageError) return { code: usageExitCode, text: error.message };
  if (error instanceof ConfigError || error instanceof CommandFailed) return { code: options.failedCode, text: error.message };
  const unreachable = connectionFailure(error, options.databaseUrl);
  if (unreachable !== undefined) return { code: options.failedCode, text: unreachable };
  return { code: options.failedCode, text: error instanceof Error ? (error.stack ?? error.message) : String(error) };
}

/** The error's message, where even that can be read. */
function plainText(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return 'failed, with an error that cannot be shown';
  }
}
