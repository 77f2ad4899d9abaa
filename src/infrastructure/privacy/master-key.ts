import { randomBytes } from 'node:crypto';
import { isAes256KeyText, type Config } from '../config/config.js';
import { loadOrGenerateSecret } from '../config/generated-secret.js';

/**
 * The key that wraps every person's data key at rest (`MASTER_KEY`, base64 of 32 bytes).
 * Production must bring its own, kept apart from the database (a database dump alone then holds
 * no readable personal data); elsewhere one is generated under `DATA_DIR`.
 */
export async function loadMasterKey(config: Pick<Config, 'MASTER_KEY' | 'NODE_ENV' | 'DATA_DIR'>): Promise<Buffer> {
  const text = await loadOrGenerateSecret(config, {
    setting: 'MASTER_KEY',
    configured: config.MASTER_KEY,
    file: 'master-key',
    generate: () => randomBytes(32).toString('base64'),
    problem: (stored) => (isAes256KeyText(stored) ? undefined : 'does not hold base64 of 32 bytes'),
  });
  return Buffer.from(text, 'base64');
}
