import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type pg from 'pg';
import { ConfigError, isAes256KeyText, masterKeyTexts, type Config } from '../config/config.js';
import { loadKeptSecret, loadOrGenerateSecret, type GeneratedSecret } from '../config/generated-secret.js';
import { claimMasterKey, readMasterKeyClaim, whileClaimingFirst, type MasterKeyClaim } from './master-key-claim.js';
import { masterKeyFingerprint, storedFingerprints } from './pg-subject-key-store.js';

type MasterKeyConfig = Pick<Config, 'MASTER_KEY' | 'MASTER_KEY_PREVIOUS' | 'NODE_ENV' | 'DATA_DIR'>;

const masterKeyFile = 'master-key';

function masterKeySecret(config: Pick<Config, 'MASTER_KEY'>): GeneratedSecret {
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
export async function loadMasterKey(config: Pick<Config, 'MASTER_KEY' | 'NODE_ENV' | 'DATA_DIR'>): Promise<Buffer> {
  return Buffer.from(await loadOrGenerateSecret(config, masterKeySecret(config)), 'base64');
}

/**
 * `current` (`MASTER_KEY`) wraps every new data key; `previous` (`MASTER_KEY_PREVIOUS`) only
 * unwrap the data keys they wrapped.
 */
export type MasterKeyring = { readonly current: Buffer; readonly previous: readonly Buffer[] };

export type OpenedMasterKeys = {
  /** `undefined`: a read-only tool on a database that stores no data key, with no key of its own. */
  readonly keyring: MasterKeyring | undefined;
  /** The schema lacks `master_key_claim` (migration 0740): the stored keys were checked, nothing claimed. */
  readonly schemaBehind: boolean;
};

/**
 * `generate-when-fresh`: a process of the service (an API, a projector, seed, rebuild);
 * `read-only`: a tool that only reads (the audit CLIs), which never writes a master-key file
 * nor claims a key.
 */
export type MasterKeyUse = 'generate-when-fresh' | 'read-only';

/**
 * The master keys, refused unless they unwrap every data key already stored and `MASTER_KEY` is
 * the one `master_key_claim` names: a data key wrapped by another would sit beside those for good
 * (the log sealed with it cannot be rewritten), and every reader without that key would fail.
 * The first start claims its key: on a fresh database the one it has or generates, processes
 * starting together taking turns so that only one generates; on a database whose keys were
 * stored before the claim was kept, the key that wrapped them if one did, else `MASTER_KEY`.
 * A ConfigError in one line names keys by fingerprint, never a key.
 */
export async function openMasterKey(config: MasterKeyConfig, pool: pg.Pool, use: MasterKeyUse): Promise<OpenedMasterKeys> {
  const stored = await storedFingerprints(pool);
  if (use === 'read-only') {
    const kept = await keptKey(config);
    if (stored.length === 0) return { keyring: kept === undefined ? undefined : withPrevious(config, kept), schemaBehind: false };
    return { keyring: covering(config, stored, kept), schemaBehind: false };
  }
  const claim = await readMasterKeyClaim(pool);
  if (claim.status === 'schema-behind') {
    // As before the claim was kept: a key is generated only for a database that stores none.
    const keyring = stored.length === 0 ? withPrevious(config, await loadMasterKey(config)) : covering(config, stored, await keptKey(config));
    return { keyring, schemaBehind: true };
  }
  if (claim.status === 'unclaimed' && stored.length === 0) {
    const first = await claimFirst(config, pool);
    // Claimed meanwhile by a process that started at the same time: checked against its claim.
    return first === undefined ? openMasterKey(config, pool, use) : { keyring: first, schemaBehind: false };
  }
  const keyring = covering(config, stored, await keptKey(config), claim);
  const fingerprint = masterKeyFingerprint(keyring.current);
  // Keys stored before the claim was kept: claimed for the key that wrapped them all, if one did.
  const [only, ...more] = stored;
  const claimed = claim.status === 'claimed' ? claim.fingerprint : await claimMasterKey(pool, only !== undefined && more.length === 0 ? only : fingerprint);
  if (claimed !== fingerprint) throw claimRefusal(config, claimed, fingerprint);
  return { keyring, schemaBehind: false };
}

/** The first claim of a fresh database, or `undefined` when another process's claim came first. */
function claimFirst(config: MasterKeyConfig, pool: pg.Pool): Promise<MasterKeyring | undefined> {
  return whileClaimingFirst(pool, async (client) => {
    if ((await readMasterKeyClaim(client)).status !== 'unclaimed') return undefined;
    // Generated, if need be, only now, holding the lock: the claim below is then this key's, so
    // no process that loses leaves a key file behind. Only a process of an older release, which
    // stores data keys without claiming, could beat it; the file left then wrapped nothing, and
    // the refusal names it.
    const key = await loadMasterKey(config);
    const fingerprint = masterKeyFingerprint(key);
    const claimed = await claimMasterKey(client, fingerprint);
    if (claimed !== fingerprint) throw claimRefusal(config, claimed, fingerprint);
    return withPrevious(config, key);
  });
}

async function keptKey(config: MasterKeyConfig): Promise<Buffer | undefined> {
  const kept = await loadKeptSecret(config, masterKeySecret(config));
  return kept === undefined ? undefined : Buffer.from(kept, 'base64');
}

function withPrevious(config: MasterKeyConfig, current: Buffer): MasterKeyring {
  return { current, previous: masterKeyTexts(config.MASTER_KEY_PREVIOUS).map((text) => Buffer.from(text, 'base64')) };
}

/** `kept` and the previous keys, refused unless they unwrap every stored data key (and a claim has a key to compare). */
function covering(config: MasterKeyConfig, stored: readonly string[], kept: Buffer | undefined, claim?: MasterKeyClaim): MasterKeyring {
  if (kept === undefined) {
    const missing = `MASTER_KEY is unset and ${path.join(config.DATA_DIR, masterKeyFile)} does not exist`;
    if (stored.length > 0) throw new ConfigError(`subject_keys holds data keys wrapped by ${keysNamed(stored)}, but ${missing}: ${remedy(stored, claim)} (a new key would leave them unreadable for good)`);
    const claimed = claim?.status === 'claimed' ? claim.fingerprint : '?';
    throw new ConfigError(`${claimNamed(claimed)}, but ${missing}: set MASTER_KEY to that key, or point DATA_DIR at the directory holding its master-key file`);
  }
  const keyring = withPrevious(config, kept);
  const fingerprint = masterKeyFingerprint(kept);
  const previous = keyring.previous.map(masterKeyFingerprint);
  const uncovered = stored.filter((wrappedWith) => wrappedWith !== fingerprint && !previous.includes(wrappedWith));
  if (uncovered.length === 0) return keyring;
  const held = previous.length > 0 ? ` and MASTER_KEY_PREVIOUS holds ${keysNamed(previous)}` : '';
  throw new ConfigError(`subject_keys holds data keys wrapped by ${keysNamed(uncovered)}, but ${sourceOf(config)} is ${fingerprint}${held}: ${remedy(stored, claim)}`);
}

function remedy(stored: readonly string[], claim: MasterKeyClaim | undefined): string {
  if (stored.length === 1) return 'set MASTER_KEY to the key that wrapped them, or point DATA_DIR at the directory holding its master-key file';
  const current = claim?.status === 'claimed' ? `${claim.fingerprint}, the claimed one (master_key_claim),` : 'one of them';
  return `data keys of ${stored.length} master keys are stored (${stored.join(', ')}): set MASTER_KEY to ${current} and MASTER_KEY_PREVIOUS to the others, comma-separated (a generated key is in the master-key file of the DATA_DIR it was generated into)`;
}

function claimRefusal(config: MasterKeyConfig, claimed: string, fingerprint: string): ConfigError {
  const rotation = masterKeyTexts(config.MASTER_KEY_PREVIOUS).some((text) => masterKeyFingerprint(Buffer.from(text, 'base64')) === claimed)
    ? `; to have ${fingerprint} wrap new data keys instead, stop every process and, as the schema owner, run UPDATE master_key_claim SET fingerprint = '${fingerprint}'`
    : '';
  return new ConfigError(
    `${claimNamed(claimed)}, but ${sourceOf(config)} is ${fingerprint}: set MASTER_KEY to that key (and any other that wrapped data keys in MASTER_KEY_PREVIOUS), or point DATA_DIR at the directory holding its master-key file${rotation}`,
  );
}

function claimNamed(claimed: string): string {
  return `master_key_claim names master key ${claimed} as the one that wraps new data keys`;
}

function sourceOf(config: MasterKeyConfig): string {
  return config.MASTER_KEY === undefined ? `the master key in ${path.join(config.DATA_DIR, masterKeyFile)}` : 'MASTER_KEY';
}

function keysNamed(fingerprints: readonly string[]): string {
  return fingerprints.length === 1 ? `master key ${fingerprints.join('')}` : `master keys ${fingerprints.join(', ')}`;
}
