import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { failureReport } from '../../src/infrastructure/config/command-line.js';
import { ConfigError } from '../../src/infrastructure/config/config.js';
import { loadKeptSecret } from '../../src/infrastructure/config/generated-secret.js';
import { loadMasterKey } from '../../src/infrastructure/privacy/master-key.js';

const dirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'generated-secret-'));
  dirs.push(dir);
  return dir;
};
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

const development = (DATA_DIR: string) => ({ MASTER_KEY: undefined, NODE_ENV: 'development' as const, DATA_DIR });

type Answer = { readonly key: string } | { readonly error: string };

/**
 * A process like one of compose's containers: it loads the master key from the directory it is
 * sent, answers with the key or the error, and waits for the next directory.
 */
function startProcess(): ChildProcess {
  const masterKey = new URL('../../src/infrastructure/privacy/master-key.ts', import.meta.url).href;
  const program = `
    const { loadMasterKey } = await import(${JSON.stringify(masterKey)});
    process.on('message', (DATA_DIR) => loadMasterKey({ NODE_ENV: 'development', DATA_DIR }).then(
      (key) => process.send({ key: key.toString('base64') }),
      (error) => process.send({ error: String(error) }),
    ));
    process.send('ready');`;
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', program], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

const nextMessage = (child: ChildProcess) => new Promise<unknown>((resolve) => child.once('message', resolve));

describe('a secret generated into DATA_DIR', () => {
  it('is the same one for every process starting at once on an empty directory, and none of them fails', async () => {
    const processes = Array.from({ length: 6 }, startProcess);
    try {
      await Promise.all(processes.map(nextMessage));
      for (let round = 0; round < 40; round += 1) {
        const DATA_DIR = path.join(await tempDir(), 'data');

        const answers = processes.map((child) => nextMessage(child) as Promise<Answer>);
        for (const child of processes) child.send(DATA_DIR);

        const loaded = await Promise.all(answers);
        const stored = (await readFile(path.join(DATA_DIR, 'master-key'), 'utf8')).trim();
        expect(loaded).toEqual(processes.map(() => ({ key: stored })));
        expect(await readdir(DATA_DIR)).toEqual(['master-key']);
      }
    } finally {
      for (const child of processes) child.kill();
    }
  }, 120_000);

  it('is the same one for every call at once within a process', async () => {
    const DATA_DIR = await tempDir();

    const keys = await Promise.all(Array.from({ length: 20 }, () => loadMasterKey(development(DATA_DIR))));

    const stored = Buffer.from((await readFile(path.join(DATA_DIR, 'master-key'), 'utf8')).trim(), 'base64');
    expect(keys.every((key) => key.equals(stored))).toBe(true);
    expect(await readdir(DATA_DIR)).toEqual(['master-key']);
  });

  it('when the master key is damaged, stops start-up telling the operator to restore it, never to delete it', async () => {
    const DATA_DIR = await tempDir();
    await writeFile(path.join(DATA_DIR, 'master-key'), 'not a key\n');

    const refusal = await loadMasterKey(development(DATA_DIR)).then(
      () => undefined,
      (error: unknown) => error,
    );

    expect(refusal).toBeInstanceOf(ConfigError);
    const message = refusal instanceof Error ? refusal.message : '';
    expect(message).toMatch(/master-key/);
    expect(message).toMatch(/restore it from a backup/i);
    expect(message).not.toMatch(/delete|remove|generate a new/i);
  });
});

describe('a DATA_DIR that cannot keep the secret', () => {
  const refusalOf = (loading: Promise<unknown>) =>
    loading.then(
      () => undefined,
      (error: unknown) => error,
    );

  /** Refused in one line naming DATA_DIR, the file and node's error code, as main prints it. */
  function expectOneLineRefusal(refusal: unknown, DATA_DIR: string, code: string): void {
    expect(refusal).toBeInstanceOf(ConfigError);
    const message = refusal instanceof Error ? refusal.message : '';
    expect(message).toContain(`DATA_DIR=${DATA_DIR}`);
    expect(message).toContain(path.join(DATA_DIR, 'master-key'));
    expect(message).toContain(code);
    expect(failureReport(refusal, { failedCode: 1, databaseUrl: undefined })).toEqual({ code: 1, text: message });
    expect(message).not.toContain('\n');
  }

  it.each([
    { where: 'under a regular file', code: 'ENOTDIR', dataDir: (dir: string) => path.join(dir, 'a-file', 'data') },
    { where: 'a regular file itself', code: 'EEXIST', dataDir: (dir: string) => path.join(dir, 'a-file') },
  ])('stops start-up in one line when DATA_DIR is $where ($code)', async ({ code, dataDir }) => {
    // Given a DATA_DIR that is, or lies under, a regular file
    const dir = await tempDir();
    await writeFile(path.join(dir, 'a-file'), 'not a directory\n');
    const DATA_DIR = dataDir(dir);

    // When the master key is generated into it
    const refusal = await refusalOf(loadMasterKey(development(DATA_DIR)));

    // Then start-up stops with one line saying which setting to fix
    expectOneLineRefusal(refusal, DATA_DIR, code);
  });

  it('stops start-up in one line when the file to hold the secret is a directory (EISDIR)', async () => {
    const DATA_DIR = await tempDir();
    await mkdir(path.join(DATA_DIR, 'master-key'));

    const refusal = await refusalOf(loadMasterKey(development(DATA_DIR)));

    expectOneLineRefusal(refusal, DATA_DIR, 'EISDIR');
  });

  it('stops a read-only tool in one line when DATA_DIR lies under a regular file', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'a-file'), 'not a directory\n');
    const DATA_DIR = path.join(dir, 'a-file', 'data');
    const secret = { setting: 'MASTER_KEY', configured: undefined, file: 'master-key', generate: () => 'unused', problem: () => undefined };

    const refusal = await refusalOf(loadKeptSecret(development(DATA_DIR), secret));

    expectOneLineRefusal(refusal, DATA_DIR, 'ENOTDIR');
  });

  it('reads nothing, and fails nothing, for a read-only tool whose DATA_DIR does not exist yet', async () => {
    const DATA_DIR = path.join(await tempDir(), 'never-made');
    const secret = { setting: 'MASTER_KEY', configured: undefined, file: 'master-key', generate: () => 'unused', problem: () => undefined };

    expect(await loadKeptSecret(development(DATA_DIR), secret)).toBeUndefined();
  });
});
