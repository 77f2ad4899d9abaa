import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, type Config } from './config.js';

export type GeneratedSecret = {
  /** The setting that supplies it, e.g. `JWT_SECRET`; named in errors. */
  readonly setting: string;
  /** Its value when configured. */
  readonly configured: string | undefined;
  /** File name under `DATA_DIR` that keeps a generated one. */
  readonly file: string;
  generate(): string;
  /** Why a stored value cannot be used, or `undefined` when it can. */
  problem(stored: string): string | undefined;
};

/**
 * A secret production must bring (shared by every instance), and that elsewhere is generated on
 * first start and kept under `DATA_DIR`, so it survives a restart without anybody writing a
 * secret into code.
 */
export async function loadOrGenerateSecret(config: Pick<Config, 'NODE_ENV' | 'DATA_DIR'>, secret: GeneratedSecret): Promise<string> {
  if (secret.configured !== undefined) return secret.configured;
  if (config.NODE_ENV === 'production') throw new ConfigError(`Invalid configuration:\n  ${secret.setting}: is required when NODE_ENV=production`);
  const file = path.join(config.DATA_DIR, secret.file);
  const generated = secret.generate();
  await mkdir(config.DATA_DIR, { recursive: true });
  try {
    // 'wx' creates the file only if it is missing, so two processes starting at once agree.
    await writeFile(file, `${generated}\n`, { mode: 0o600, flag: 'wx' });
    return generated;
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
  }
  const stored = (await readFile(file, 'utf8')).trim();
  const problem = secret.problem(stored);
  if (problem !== undefined) throw new ConfigError(`${file} ${problem}; delete it to generate a new one`);
  return stored;
}
