import { createHmac, randomUUID } from 'node:crypto';
import { openBytes, sealBytes } from '../../application/privacy/aes-gcm.js';
import { sql, type ExpressionBuilder, type Kysely, type RawBuilder } from 'kysely';
import type { IdempotencyTables } from './idempotency.tables.js';

export type IdempotencyKeyId = { readonly scope: string; readonly key: string };

/** A key claimed by one request: its token tells this claim from a later takeover's. */
export type IdempotencyClaim = IdempotencyKeyId & { readonly token: string };

export type StoredResponse = {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
};

export type Claim =
  /**
   * The key is ours: run the request, then `complete` or `release` with the token. `legacyHash`
   * when it was taken over from a claim made under it: the command id derives from that hash, as
   * it did for the request that died.
   */
  | { readonly outcome: 'claimed'; readonly token: string; readonly legacyHash?: string }
  /** Another request with this key is running. */
  | { readonly outcome: 'in_flight' }
  /** The key was used for a different request. */
  | { readonly outcome: 'mismatch' }
  /** `answeredMsAgo`: how long since the response was stored, on the database's clock. */
  | { readonly outcome: 'completed'; readonly response: StoredResponse; readonly answeredMsAgo: number };

/** How long a claim and its key last, counted from the database's clock when the key is claimed. */
export type ClaimTerms = {
  /** How long the claim holds if its request never finishes (a crash). */
  readonly leaseMs: number;
  /** How long the key and its response are kept. */
  readonly ttlMs: number;
};

/**
 * Idempotency keys and their responses in PostgreSQL; one row per (scope, key). Leases and
 * expiry are written and compared on the database's clock only: with each API process on its
 * own clock, one running 40 s ahead would see a claim another still renews as lapsed, take it
 * over, and run the request twice.
 */
export class PgIdempotencyStore {
  private readonly encryptionKey: Buffer;

  constructor(
    private readonly db: Kysely<IdempotencyTables>,
    /** The server secret; the response encryption key is derived from it. */
    secret: string,
  ) {
    this.encryptionKey = createHmac('sha256', secret).update('idempotency-response-encryption').digest();
  }

  /**
   * `legacyHash` makes the request's hash by the formula before it covered If-Match and sorted the
   * body: a key claimed under that formula (`request_hash_version` 1) matches it too. Called only
   * for such a key. It and this parameter can go once the last such key has expired,
   * `IDEMPOTENCY_TTL_HOURS` after the deploy.
   */
  async claim(id: IdempotencyKeyId, requestHash: string, terms: ClaimTerms, legacyHash?: () => string): Promise<Claim> {
    const token = randomUUID();
    const thisKey = this.db.deleteFrom('idempotency_keys').where('scope', '=', id.scope).where('key', '=', id.key);
    // An expired key is as good as none: drop it here rather than wait for the sweep.
    await thisKey.where('expires_at', '<=', databaseNow()).execute();
    const inserted = await this.db
      .insertInto('idempotency_keys')
      .values({
        scope: id.scope,
        key: id.key,
        request_hash: requestHash,
        request_hash_version: 2,
        status: 'in_flight',
        locked_until: fromNow(terms.leaseMs),
        claim_token: token,
        created_at: databaseNow(),
        expires_at: fromNow(terms.ttlMs),
      })
      .onConflict((conflict) => conflict.columns(['scope', 'key']).doNothing())
      .returning('key')
      .executeTakeFirst();
    if (inserted) return { outcome: 'claimed', token };

    const row = await this.db
      .selectFrom('idempotency_keys')
      .selectAll()
      // A row stored before `answered_at` was kept was answered moments after its claim.
      .select(sql<number>`(extract(epoch from now() - coalesce(answered_at, created_at)) * 1000)::float8`.as('answered_ms_ago'))
      .where('scope', '=', id.scope)
      .where('key', '=', id.key)
      .executeTakeFirst();
    // Released (a 5xx) between our insert and this read: the retry is the client's to make.
    if (!row) return { outcome: 'in_flight' };
    const legacy = row.request_hash !== requestHash && row.request_hash_version === 1 && row.request_hash === legacyHash?.();
    if (row.request_hash !== requestHash && !legacy) return { outcome: 'mismatch' };
    if (row.status === 'completed' && row.response_status !== null && row.response_body !== null) {
      const response = { status: row.response_status, headers: row.response_headers ?? {}, body: this.decrypt(row.response_body) };
      return { outcome: 'completed', response, answeredMsAgo: row.answered_ms_ago };
    }
    if (!(await this.takeOverAbandoned(id, token, terms.leaseMs))) return { outcome: 'in_flight' };
    return legacy ? { outcome: 'claimed', token, legacyHash: row.request_hash } : { outcome: 'claimed', token };
  }

  /**
   * A claim whose lease ran out belongs to a request that died with its process. Taking it
   * over is safe: the retry derives the same command id, so it appends nothing twice. (A request
   * that renews its lease never loses it while it runs: see the plugin.)
   */
  private async takeOverAbandoned(id: IdempotencyKeyId, token: string, leaseMs: number): Promise<boolean> {
    const taken = await this.db
      .updateTable('idempotency_keys')
      .set({ locked_until: fromNow(leaseMs), claim_token: token })
      .where('scope', '=', id.scope)
      .where('key', '=', id.key)
      .where('status', '=', 'in_flight')
      .where('locked_until', '<=', databaseNow())
      .executeTakeFirst();
    return taken.numUpdatedRows > 0n;
  }

  /** Extends a claim's lease to `leaseMs` from now while its request runs; `false` once the claim is no longer this one. */
  async renew(claim: IdempotencyClaim, leaseMs: number): Promise<boolean> {
    const renewed = await this.db.updateTable('idempotency_keys').set({ locked_until: fromNow(leaseMs) }).where(ownClaim(claim)).executeTakeFirst();
    return renewed.numUpdatedRows > 0n;
  }

  /** Stores the response; `subject`, the user it is about when the scope does not name them, lets erasure find it. */
  async complete(claim: IdempotencyClaim, response: StoredResponse, subject: string | null = null): Promise<void> {
    await this.db
      .updateTable('idempotency_keys')
      .set({
        status: 'completed',
        locked_until: null,
        claim_token: null,
        response_status: response.status,
        response_headers: JSON.stringify(response.headers),
        response_body: this.encrypt(response.body),
        subject,
        answered_at: databaseNow(),
      })
      .where(ownClaim(claim))
      .execute();
  }

  /** Frees a claim whose request failed on our side, so that a retry runs it again. */
  async release(claim: IdempotencyClaim): Promise<void> {
    await this.db.deleteFrom('idempotency_keys').where(ownClaim(claim)).execute();
  }

  /** Deletes up to `limit` expired keys; small batches keep each sweep short. */
  async sweep(limit = 500): Promise<number> {
    const result = await sql`
      DELETE FROM idempotency_keys
      WHERE ctid = ANY (ARRAY(SELECT ctid FROM idempotency_keys WHERE expires_at <= ${databaseNow()} LIMIT ${limit}))`.execute(this.db);
    return Number(result.numAffectedRows ?? 0n);
  }

  private encrypt(plain: Buffer): Buffer {
    return sealBytes(this.encryptionKey, plain);
  }

  private decrypt(stored: Buffer): Buffer {
    return openBytes(this.encryptionKey, stored);
  }
}

/** The database's time: `now()`, stable within a statement, so the expiry index still serves the sweep. */
function databaseNow(): RawBuilder<Date> {
  return sql<Date>`now()`;
}

/** The database's time `ms` from now. */
function fromNow(ms: number): RawBuilder<Date> {
  return sql<Date>`now() + make_interval(secs => ${ms / 1000})`;
}

/** The row of this very claim, still in flight: not a takeover's after its lease ran out. */
function ownClaim(claim: IdempotencyClaim) {
  return (eb: ExpressionBuilder<IdempotencyTables, 'idempotency_keys'>) =>
    eb.and({ scope: claim.scope, key: claim.key, status: 'in_flight', claim_token: claim.token });
}
