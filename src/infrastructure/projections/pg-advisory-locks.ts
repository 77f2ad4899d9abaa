import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { sleep } from '../../application/sleep.js';
import { pinSearchPath } from '../postgres/search-path.js';
import type { HeldLock, ProjectionLocks } from '../../projections/runtime/projection-lock.js';

export type PgAdvisoryLocksOptions = {
  readonly connectionString: string;
  /** How often a waiting instance tries the lock again. Default 1 s. */
  readonly retryMs?: number;
  /** How often a held lock's session is checked; two missed answers count as lost. Default 1 s. */
  readonly heartbeatMs?: number;
  /**
   * How long the server waits for a held lock's heartbeats before it ends the session (its holder
   * taken for gone, its host lost or cut off without closing the connection). Default 30 s, or
   * five heartbeats if longer: longer than any pause of the holder's own (a long GC, a large
   * fold), which would lose the lock with nothing wrong.
   */
  readonly goneAfterMs?: number;
  /** Connection problems, for the log; they are retried, never thrown. */
  readonly onError?: (error: unknown) => void;
};

/**
 * `pg_try_advisory_lock` on a dedicated connection per lock, outside any pool: a session lock
 * lives exactly as long as its connection, so a process that dies (or loses the network) lets
 * the lock go and a standby instance takes it on its next try. Its own client also means a
 * connection error is an event we handle, where a checked-out pool client would crash the process.
 */
export class PgAdvisoryLocks implements ProjectionLocks {
  private readonly retryMs: number;
  private readonly heartbeatMs: number;
  private readonly goneAfterMs: number;
  private readonly onError: (error: unknown) => void;

  constructor(private readonly options: PgAdvisoryLocksOptions) {
    this.retryMs = options.retryMs ?? 1000;
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.goneAfterMs = options.goneAfterMs ?? Math.max(30_000, 5 * this.heartbeatMs);
    this.onError = options.onError ?? (() => undefined);
  }

  async acquire(key: bigint, signal: AbortSignal): Promise<HeldLock | undefined> {
    while (!signal.aborted) {
      const lost = new AbortController();
      const client = new pg.Client({
        connectionString: this.options.connectionString,
        application_name: 'projector-lock',
        keepAlive: true,
        query_timeout: this.heartbeatMs * 2,
      });
      client.on('error', (error) => lost.abort(error));
      client.on('end', () => lost.abort(new Error('lock session ended')));
      try {
        await client.connect();
        await pinSearchPath(client);
        const sessionKey = await takeSessionKey(client);
        while (!signal.aborted && !lost.signal.aborted) {
          const result = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1::bigint) as locked', [key.toString()]);
          if (result.rows[0]?.locked) {
            // A holder that dies without closing its connection would otherwise keep the lock
            // until TCP keepalive notices (two hours by default): the server ends a held lock's
            // session once its heartbeats have stopped for `goneAfterMs`.
            await client.query(`set idle_session_timeout = ${this.goneAfterMs}`);
            return this.held(client, sessionKey, lost);
          }
          await sleep(this.retryMs, signal);
        }
      } catch (error) {
        if (!signal.aborted) this.onError(error);
      }
      await client.end().catch(() => undefined);
      await sleep(this.retryMs, signal);
    }
    return undefined;
  }

  private held(client: pg.Client, sessionKey: bigint, lost: AbortController): HeldLock {
    let released = false;
    const heartbeat = setInterval(() => {
      client.query('select 1').catch((error: unknown) => {
        // A heartbeat in flight when the lock is given up fails with the session: not a problem.
        if (released) return;
        this.onError(error);
        lost.abort(error);
        // The server may still see the session: end it, or its lock outlives our belief in it.
        client.end().catch(() => undefined);
      });
    }, this.heartbeatMs);
    heartbeat.unref();
    lost.signal.addEventListener('abort', () => clearInterval(heartbeat), { once: true });
    return {
      sessionKey,
      lost: lost.signal,
      release: async () => {
        released = true;
        clearInterval(heartbeat);
        await client.end().catch(() => undefined);
      },
    };
  }
}

/**
 * Takes a random key on the lock's session and keeps it for the session's life: see
 * `HeldLock.sessionKey`. 64 random bits collide with no other key in practice; if one ever did,
 * the session is refused rather than shared.
 */
async function takeSessionKey(client: pg.Client): Promise<bigint> {
  const sessionKey = randomBytes(8).readBigInt64BE(0);
  const { rows } = await client.query<{ taken: boolean }>('select pg_try_advisory_lock($1::bigint) as taken', [sessionKey.toString()]);
  if (!rows[0]?.taken) throw new Error('the random session key is held by another session');
  return sessionKey;
}
