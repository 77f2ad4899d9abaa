import type * as fs from 'node:fs/promises';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadMasterKey } from '../../src/infrastructure/privacy/master-key.js';

// A file system without hard links (FAT, some network and FUSE mounts) refuses link().
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof fs>();
  return { ...actual, link: () => Promise.reject(Object.assign(new Error('operation not permitted'), { code: 'EPERM' })) };
});

describe('a generated secret on a file system without hard links', () => {
  let dataDir: string | undefined;
  afterEach(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('is still generated, stored and read back, and leaves no draft behind', async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'no-links-'));
    const config = { NODE_ENV: 'development' as const, DATA_DIR: dataDir };

    const generated = await loadMasterKey(config);

    expect(await loadMasterKey(config)).toEqual(generated);
    expect(await readdir(dataDir)).toEqual(['master-key']);
    expect((await readFile(path.join(dataDir, 'master-key'), 'utf8')).trim().length).toBeGreaterThan(0);
  });
});
