import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from './config.js';

/**
 * `parseArgs`, with an unknown option or one missing its value answered by the message and
 * `usage` (a ConfigError: printed without a stack trace) rather than a TypeError's stack.
 */
export function parseCommandLine<T extends ParseArgsConfig>(config: T, usage: string): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    throw new ConfigError(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
  }
}
