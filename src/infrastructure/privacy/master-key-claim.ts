import type pg from 'pg';
import { isSqlState, undefinedTable } from '../../projections/shared/read-across-generations.js';

/**
 * What `master_key_claim` says: the fingerprint of the master key that wraps this database's new
 * data keys; `unclaimed` before the first start; `schema-behind` when the table is missing (a
 * release started with `RUN_MIGRATIONS=false` ahead of migration 0740).
 */
export type MasterKeyClaim = { readonly status: 'claimed'; readonly fingerprint: string } | { readonly status: 'unclaimed' } | { readonly status: 'schema-behind' };

type Queryable = pg.Pool | pg.PoolClient;

export async function readMasterKeyClaim(db: Queryable): Promise<MasterKeyClaim> {
  try {
    const { rows } = await db.query<{ fingerprint: string }>('SELECT fingerprint FROM master_key_claim');
    const [row] = rows;
    return row === undefined ? { status: 'unclaimed' } : { status: 'claimed', fingerprint: row.fingerprint };
  } catch (error) {
    if (isSqlState(error, undefinedTable)) return { status: 'schema-behind' };
    throw error;
  }
}

/**
 * Claims `fingerprint` unless a claim is there already, and returns the fingerprint claimed,
 * this one or the other. Two statements, as `claimEventLog`: the insert waits for a concurrent
 * one to commit and then does nothing, and the select, a statement of its own, sees the row
 * that won.
 */
export async function claimMasterKey(db: Queryable, fingerprint: string): Promise<string> {
  await db.query('INSERT INTO master_key_claim (fingerprint) VALUES ($1) ON CONFLICT DO NOTHING', [fingerprint]);
  const claim = await readMasterKeyClaim(db);
  if (claim.status !== 'claimed') throw new Error('master_key_claim is empty after its insert');
  return claim.fingerprint;
}

/**
 * `work` holding the lock of a fresh database's first claim (advisory key 1706, 0), in a
 * transaction: processes starting together on it take turns, so only the first makes (generates)
 * a key to claim and the others, seeing its claim, make none. A crash lets the lock go.
 */
export async function whileClaimingFirst<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(1706, 0)');
    const result = await work(client);
    await client.query('COMMIT');
    client.release();
    return result;
  } catch (error) {
    // Closed, not returned to the pool: that rolls back whatever the transaction holds.
    client.release(true);
    throw error;
  }
}
