import { randomBytes } from 'node:crypto';
import type { Config } from '../config/config.js';
import { loadOrGenerateSecret } from '../config/generated-secret.js';

/**
 * The HS256 key for access tokens. Production must bring its own (`JWT_SECRET`), shared by every
 * instance of the command and query APIs; elsewhere one is generated under `DATA_DIR`.
 */
export function loadSigningSecret(config: Pick<Config, 'JWT_SECRET' | 'NODE_ENV' | 'DATA_DIR'>): Promise<string> {
  return loadOrGenerateSecret(config, {
    setting: 'JWT_SECRET',
    configured: config.JWT_SECRET,
    file: 'jwt-secret',
    generate: () => randomBytes(48).toString('base64url'),
    problem: (stored) => (stored.length < 32 ? 'holds a key shorter than 32 characters' : undefined),
  });
}
