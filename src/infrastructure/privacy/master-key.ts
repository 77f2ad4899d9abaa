import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type pg from 'pg';
import { ConfigError, isAes256KeyText, type Config } from '../config/config.js';
import { loadKeptSecret, loadOrGenerateSecret, type GeneratedSecret } from '../config/generated-secret.js';
import { masterKeyFingerprint, wrappingFingerprints } from './pg-subject-key-store.js';

type MasterKeyConfig = Pick<Config, 'MASTER_KEY' | 'NODE_ENV' | 'DATA_DIR'>;

const masterKeyFile = 'master-key';

function masterKeySecret(config: MasterKeyConfig): GeneratedSecret {
  return {
    setting: 'MASTER_KEY',
    configured: config.MASTER_KEY,
    file: masterKeyFile,
    generate: () => randomBytes(32).toString('base64'),
    problem: (stored) => (isAes256KeyText(stored) ? undefined : 'does not hold base64 of 32 bytes'),
  };
}

/**
 * The key that wraps every person's data key at rest (`MASTER_KEY`, base64 of 32 bytes).
 * Production must bring its own, kept apart from the database (a database dump alone then holds
 * no readable personal data); elsewhere one is generated under `DATA_DIR`.
 */
export async function loadMasterKey(config: MasterKeyConfig): Promise<Buffer> {
  return Buffer.from(await loadOrGenerateSecret(config, masterKeySecret(config)), 'base64');
}

/**
 * `generate-when-fresh`: a process of the service (an API, a projector, seed, rebuild);
 * `read-only`: a tool that only reads (the audit CLIs), which never writes a master-key file.
 */
export type MasterKeyUse = 'generate-when-fresh' | 'read-only';

/**
 * The master key, refused unless it wrapped every data key already stored: a data key wrapped by
 * another would sit beside those for good (the log sealed with it cannot be rewritten), and every
 * reader of either would fail. So one is generated only for a database that stores no data key,
 * and opens nothing (`undefined`) only for a read-only tool on such a database, which needs none.
 * A ConfigError in one line names the keys by fingerprint, never the key.
 */
export async function openMasterKey(config: MasterKeyConfig, pool: pg.Pool, use: MasterKeyUse): Promise<Buffer | undefined> {
  const stored = await wrappingFingerprints(pool);
  if (stored === undefined && use === 'generate-when-fresh') return loadMasterKey(config);
  const kept = await loadKeptSecret(config, masterKeySecret(config));
  if (stored === undefined) return kept === undefined ? undefined : Buffer.from(kept, 'base64');
  const remedy = 'set MASTER_KEY to the key that wrapped them, or point DATA_DIR at the directory holding its master-key file';
  if (kept === undefined) {
    const file = path.join(config.DATA_DIR, masterKeyFile);
    throw new ConfigError(
      `subject_keys holds data keys wrapped by master key ${stored.lowest}, but MASTER_KEY is unset and ${file} does not exist: ${remedy} (a new key would leave them unreadable for good)`,
    );
  }
  const key = Buffer.from(kept, 'base64');
  const fingerprint = masterKeyFingerprint(key);
  const other = stored.lowest !== fingerprint ? stored.lowest : stored.highest !== fingerprint ? stored.highest : undefined;
  if (other === undefined) return key;
  const source = config.MASTER_KEY === undefined ? `the master key in ${path.join(config.DATA_DIR, masterKeyFile)}` : 'MASTER_KEY';
  throw new ConfigError(`subject_keys holds data keys wrapped by master key ${other}, but ${source} is ${fingerprint}: ${remedy}`);
}
