import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/infrastructure/config/config.js';
import { loadSigningSecret } from '../../src/infrastructure/identity/signing-secret.js';

const dirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'secret-'));
  dirs.push(dir);
  return dir;
};
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('loadSigningSecret', () => {
  it('uses JWT_SECRET when set', async () => {
    const JWT_SECRET = 'x'.repeat(40);
    expect(await loadSigningSecret({ JWT_SECRET, NODE_ENV: 'production', DATA_DIR: await tempDir() })).toBe(JWT_SECRET);
  });

  it('requires JWT_SECRET in production', async () => {
    await expect(loadSigningSecret({ JWT_SECRET: undefined, NODE_ENV: 'production', DATA_DIR: await tempDir() })).rejects.toBeInstanceOf(ConfigError);
  });

  it('otherwise generates one on first start, private to the owner, and keeps it', async () => {
    const DATA_DIR = path.join(await tempDir(), 'data');
    const first = await loadSigningSecret({ JWT_SECRET: undefined, NODE_ENV: 'development', DATA_DIR });
    expect(first.length).toBeGreaterThanOrEqual(32);
    expect((await readFile(path.join(DATA_DIR, 'jwt-secret'), 'utf8')).trim()).toBe(first);
    expect((await stat(path.join(DATA_DIR, 'jwt-secret'))).mode & 0o077).toBe(0);
    expect(await loadSigningSecret({ JWT_SECRET: undefined, NODE_ENV: 'development', DATA_DIR })).toBe(first);
  });
});
