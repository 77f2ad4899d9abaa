import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
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
  requiredInProduction(config, secret);
  const file = path.join(config.DATA_DIR, secret.file);
  const generated = secret.generate();
  const published = await inDataDir(config, secret, 'keep', async () => {
    await mkdir(config.DATA_DIR, { recursive: true });
    return publish(file, `${generated}\n`);
  });
  if (published) return generated;
  return checked(file, await inDataDir(config, secret, 'read', () => readFile(file, 'utf8')), secret);
}

/**
 * The secret as configured, or as kept under `DATA_DIR`; `undefined` when neither, and then
 * nothing is generated or written: for a caller to which a new one would do harm.
 */
export async function loadKeptSecret(config: Pick<Config, 'NODE_ENV' | 'DATA_DIR'>, secret: GeneratedSecret): Promise<string | undefined> {
  if (secret.configured !== undefined) return secret.configured;
  requiredInProduction(config, secret);
  const file = path.join(config.DATA_DIR, secret.file);
  const text = await inDataDir(config, secret, 'read', () =>
    readFile(file, 'utf8').catch((error: unknown) => {
      if (codeOf(error) === 'ENOENT') return undefined;
      throw error;
    }),
  );
  return text === undefined ? undefined : checked(file, text, secret);
}

function requiredInProduction(config: Pick<Config, 'NODE_ENV'>, secret: GeneratedSecret): void {
  if (config.NODE_ENV === 'production') throw new ConfigError(`Invalid configuration:\n  ${secret.setting}: is required when NODE_ENV=production`);
}

/**
 * `step`, its file-system failure (DATA_DIR under a regular file, no permission, a read-only or
 * full disk) a ConfigError in one line naming the setting to fix: node's own error reached the
 * operator as a stack trace of `mkdir` or `open` on some path.
 */
async function inDataDir<T>(config: Pick<Config, 'DATA_DIR'>, secret: GeneratedSecret, action: 'keep' | 'read', step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    const code = codeOf(error);
    if (typeof code !== 'string' || !(error instanceof Error)) throw error;
    const detail = error.message.startsWith(code) ? error.message : `${code}: ${error.message}`;
    const file = path.join(config.DATA_DIR, secret.file);
    const [what, need] = action === 'keep' ? [`keep ${secret.setting} in ${file}`, 'create and write in'] : [`read ${secret.setting} from ${file}`, 'read'];
    throw new ConfigError(
      `DATA_DIR=${config.DATA_DIR}: cannot ${what} (${detail}); DATA_DIR must name a directory this process can ${need}`,
      { cause: error },
    );
  }
}

/** The stored text of `file`, trimmed, or a ConfigError saying it is damaged. */
function checked(file: string, text: string, secret: GeneratedSecret): string {
  const stored = text.trim();
  const problem = secret.problem(stored);
  // Never "delete it": a new one cannot read what the old one sealed or signed; for the master
  // key, every person's personal data, for good.
  if (problem !== undefined) {
    throw new ConfigError(
      `${file} ${problem}: the file is damaged. Restore it from a backup, or set ${secret.setting} to the value it held: a new one could not read or verify what this one sealed or signed (for the master key, every person's personal data)`,
    );
  }
  return stored;
}

/**
 * Puts `text` at `file` whole, or not at all, if no file is there yet; false when another
 * process got there first. Several processes start at once on one `DATA_DIR` (compose runs five):
 * a file created empty and written after, as `writeFile` does, could be read in between.
 */
async function publish(file: string, text: string): Promise<boolean> {
  const draft = `${file}.${process.pid}.${randomUUID()}.tmp`;
  try {
    const handle = await open(draft, 'wx', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    // link, unlike rename, refuses to replace a file that is already there.
    return await link(draft, file).then(
      () => true,
      async (error: unknown) => {
        const code = codeOf(error);
        if (code === 'EEXIST') return false;
        // A file system without hard links (FAT, some network and FUSE mounts): created in place,
        // which another process starting at the very same moment may read before it is written.
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') return createInPlace(file, text);
        throw error;
      },
    );
  } finally {
    await rm(draft, { force: true });
  }
}

/** `publish` without a link: true when this call created the file. */
async function createInPlace(file: string, text: string): Promise<boolean> {
  try {
    await writeFile(file, text, { mode: 0o600, flag: 'wx' });
    return true;
  } catch (error) {
    if (codeOf(error) === 'EEXIST') return false;
    throw error;
  }
}

/** node's code of a file-system error (`EEXIST`, `EPERM`, ...). */
function codeOf(error: unknown): unknown {
  return error instanceof Error && 'code' in error ? error.code : undefined;
}
