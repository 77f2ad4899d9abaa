import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A scratch `DATA_DIR` under the system's temporary directory; the caller removes it. */
export async function scratchDataDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  // As root, the embedded PostgreSQL runs as the `postgres` user, which must be able to enter it.
  await chmod(dir, 0o755);
  return dir;
}

/** The embedded server's pid under `DATA_DIR`, from the lock file it keeps while it runs. */
export async function postmasterPid(dataDir: string): Promise<number | undefined> {
  const lockFile = path.join(dataDir, 'postgres', 'postmaster.pid');
  if (!existsSync(lockFile)) return undefined;
  const pid = Number((await readFile(lockFile, 'utf8')).split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Alive, not merely a zombie waiting for whoever adopted it to reap it. */
export async function isRunning(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return !/^\d+ \(.*\) Z/.test(stat);
}

/**
 * A node process (a process group of its own) that starts the embedded PostgreSQL under
 * `DATA_DIR` and then idles, as `npm run seed` does while it works; resolved once the server is up.
 * `title` renames it first, as pm2 or a `process.title` does.
 */
export async function processWithEmbeddedPostgres(dataDir: string, options: { title?: string } = {}) {
  const script = [
    ...(options.title === undefined ? [] : [`process.title = ${JSON.stringify(options.title)};`]),
    "import { startEmbeddedPostgres } from './src/infrastructure/postgres/embedded-postgres.ts';",
    `await startEmbeddedPostgres({ dataDir: ${JSON.stringify(path.join(dataDir, 'postgres'))}, persistent: true });`,
    "console.log('started');",
    'setInterval(() => undefined, 1000);',
  ].join('\n');
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', script], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => void (chunk.toString().includes('started') && resolve()));
      void exited.then(() => reject(new Error('the process ended before the server started')));
    });
  } catch (error) {
    kill();
    throw error;
  }
  return { child, exited, kill };
}
