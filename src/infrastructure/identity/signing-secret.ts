import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, type Config } from '../config/config.js';

/**
 * The HS256 key for access tokens. Production must bring its own (`JWT_SECRET`), shared by every
 * instance of the command and query APIs. Elsewhere one is generated on first start and kept
 * under `DATA_DIR`, so tokens survive a restart without anybody writing a secret into code.
 */
export async function loadSigningSecret(config: Pick<Config, 'JWT_SECRET' | 'NODE_ENV' | 'DATA_DIR'>): Promise<string> {
  if (config.JWT_SECRET !== undefined) return config.JWT_SECRET;
  if (config.NODE_ENV === 'production') throw new ConfigError('Invalid configuration:\n  JWT_SECRET: is required when NODE_ENV=production');
  const file = path.join(config.DATA_DIR, 'jwt-secret');
  const secret = randomBytes(48).toString('base64url');
  await mkdir(config.DATA_DIR, { recursive: true });
  try {
    // 'wx' creates the file only if it is missing, so two processes starting at once agree.
    await writeFile(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    return secret;
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
  }
  const stored = (await readFile(file, 'utf8')).trim();
  if (stored.length < 32) throw new ConfigError(`${file} holds a key shorter than 32 characters; delete it to generate a new one`);
  return stored;
}
