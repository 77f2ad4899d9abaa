import { createHash, randomBytes } from 'node:crypto';
import type pg from 'pg';
import { SubjectKeyUnreadableError, type SubjectKey, type SubjectKeyStore } from '../../application/ports/subject-keys.js';
import { openBytes, sealBytes } from '../../application/privacy/aes-gcm.js';
import { isSqlState, undefinedTable } from '../../projections/shared/read-across-generations.js';

type KeyRow = { subject_id: string; wrapped_key: Buffer | null; wrapped_with: string | null };

/** How `wrapped_with` names a master key: enough to tell two apart, nothing that helps guess one. */
export function masterKeyFingerprint(masterKey: Buffer): string {
  return createHash('sha256').update(masterKey).digest('hex').slice(0, 16);
}

/**
 * The fingerprints of the master keys that wrapped the stored data keys, in order; none when no
 * key is stored (tombstones are wrapped by nothing). A skip scan of the index
 * `subject_keys_wrapped_with`: one probe per master key and one more, however many people there
 * are.
 */
export async function storedFingerprints(pool: pg.Pool): Promise<string[]> {
  try {
    const { rows } = await pool.query<{ fingerprint: string }>(
      `WITH RECURSIVE fingerprints (fingerprint) AS (
         (SELECT wrapped_with FROM subject_keys WHERE wrapped_with IS NOT NULL ORDER BY wrapped_with LIMIT 1)
         UNION ALL
         SELECT (SELECT wrapped_with FROM subject_keys WHERE wrapped_with IS NOT NULL AND wrapped_with > fingerprints.fingerprint ORDER BY wrapped_with LIMIT 1)
         FROM fingerprints WHERE fingerprints.fingerprint IS NOT NULL)
       SELECT fingerprint FROM fingerprints WHERE fingerprint IS NOT NULL`,
    );
    return rows.map((row) => row.fingerprint);
  } catch (error) {
    // A schema from before `0500_subject_keys` (RUN_MIGRATIONS=false) stores no key.
    if (isSqlState(error, undefinedTable)) return [];
    throw error;
  }
}

/**
 * Data keys in PostgreSQL (`subject_keys`), each wrapped by the master key with its subject id
 * as additional data: a key row copied onto another person does not unwrap. A new key is always
 * wrapped by `masterKey`; `previous` keys (`MASTER_KEY_PREVIOUS`) only unwrap the keys they
 * wrapped, chosen by the row's `wrapped_with`. Without a master key (a read-only tool on a
 * database that stores none but tombstones) it reads tombstones and refuses to store a key.
 */
export class PgSubjectKeyStore implements SubjectKeyStore {
  private readonly fingerprint: string | undefined;
  /** Every master key this store unwraps with, by fingerprint. */
  private readonly unwrapping: ReadonlyMap<string, Buffer>;
  private readonly hasPrevious: boolean;

  constructor(
    private readonly pool: pg.Pool,
    private readonly masterKey: Buffer | undefined,
    previous: readonly Buffer[] = [],
  ) {
    this.fingerprint = masterKey === undefined ? undefined : masterKeyFingerprint(masterKey);
    const keys = masterKey === undefined ? previous : [masterKey, ...previous];
    this.unwrapping = new Map(keys.map((key) => [masterKeyFingerprint(key), key]));
    this.hasPrevious = previous.length > 0;
  }

  async obtain(subjectId: string): Promise<SubjectKey> {
    if (this.masterKey === undefined) throw new Error(`no master key is loaded (a read-only tool): no data key can be stored for subject ${subjectId}`);
    const candidate = randomBytes(32);
    // Insert-or-read in one statement. Under a concurrent first use, the other transaction's
    // row is invisible to this statement's snapshot and nothing comes back: the next try sees it.
    for (let attempt = 0; attempt < 3; attempt++) {
      const { rows } = await this.pool.query<KeyRow>({
        // Named, as every statement on a hot path: parsed and planned once per connection, not
        // once per new subject (each new patient's first appointment stores a key).
        name: 'obtain_subject_key',
        text: `WITH inserted AS (
           INSERT INTO subject_keys (subject_id, wrapped_key, wrapped_with, created_at)
           VALUES ($1, $2, $3, now())
           ON CONFLICT (subject_id) DO NOTHING
           RETURNING subject_id, wrapped_key, wrapped_with)
         SELECT * FROM inserted
         UNION ALL
         SELECT subject_id, wrapped_key, wrapped_with FROM subject_keys WHERE subject_id = $1
         LIMIT 1`,
        values: [subjectId, sealBytes(this.masterKey, candidate, Buffer.from(subjectId, 'utf8')), this.fingerprint],
      });
      const [row] = rows;
      if (row) return this.unwrap(row);
    }
    throw new Error(`no data key could be stored or read for subject ${subjectId}`);
  }

  async find(subjectIds: readonly string[]): Promise<ReadonlyMap<string, SubjectKey>> {
    const { rows } = await this.pool.query<KeyRow>({
      name: 'find_subject_keys',
      text: 'SELECT subject_id, wrapped_key, wrapped_with FROM subject_keys WHERE subject_id = ANY($1::text[])',
      values: [subjectIds],
    });
    return new Map(rows.map((row) => [row.subject_id, this.unwrap(row)]));
  }

  async isErased(subjectId: string): Promise<boolean> {
    const { rows } = await this.pool.query<{ erased: boolean }>({
      name: 'subject_key_is_erased',
      text: 'SELECT wrapped_key IS NULL AS erased FROM subject_keys WHERE subject_id = $1',
      values: [subjectId],
    });
    return rows[0]?.erased ?? false;
  }

  /**
   * `erased_at` is the database's clock, not `at`: every API process reads the tombstones newer
   * than its last look by that clock (`ErasedSubjects`), which a writer's own clock, skewed or
   * fixed, would make it miss. A repeat stamps it anew: a retry of an erasure whose first attempt
   * died after this step may come long after, while the person's refresh token still mints access
   * tokens, and only a fresh stamp makes the other processes look. When the erasure happened is
   * its `SubjectErased` event's to say, not this column's.
   */
  async destroy(subjectId: string, at: Date): Promise<void> {
    await this.pool.query(
      `INSERT INTO subject_keys (subject_id, wrapped_key, wrapped_with, created_at, erased_at)
       VALUES ($1, NULL, NULL, $2, now())
       ON CONFLICT (subject_id) DO UPDATE
         SET wrapped_key = NULL, wrapped_with = NULL, erased_at = excluded.erased_at`,
      [subjectId, at],
    );
  }

  private unwrap(row: KeyRow): SubjectKey {
    if (row.wrapped_key === null) return 'erased';
    const masterKey = row.wrapped_with === null ? undefined : this.unwrapping.get(row.wrapped_with);
    if (masterKey === undefined) {
      const previous = this.hasPrevious ? ', and MASTER_KEY_PREVIOUS holds no such key' : '';
      throw new SubjectKeyUnreadableError(
        `the data key of subject ${row.subject_id} was wrapped by master key ${row.wrapped_with ?? '?'}, but MASTER_KEY is ${this.fingerprint ?? 'not loaded'}${previous}`,
      );
    }
    let key: Buffer;
    try {
      key = openBytes(masterKey, row.wrapped_key, Buffer.from(row.subject_id, 'utf8'));
    } catch (error) {
      throw new SubjectKeyUnreadableError(`the data key of subject ${row.subject_id} does not open under master key ${row.wrapped_with ?? '?'}`, { cause: error });
    }
    // Buffer.concat cuts small buffers from a shared 8 KiB slab, and a key kept in the vault's
    // cache would keep its whole slab alive: 10,000 cached keys could hold 80 MiB. Its own copy.
    const own = Buffer.alloc(key.length);
    key.copy(own);
    return own;
  }
}
