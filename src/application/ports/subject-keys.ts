/**
 * Per-person data keys for crypto-shredding: every personal field written about a person is
 * encrypted with that person's key, so destroying the key erases the data everywhere it was
 * copied to in encrypted form, the append-only event log included, without rewriting history.
 * Keys are 32 random bytes (AES-256); how they are kept at rest (wrapped by a master key) is
 * the adapter's business.
 */
export type DataKey = Buffer;

/** A subject's key, or the fact that it was destroyed (erasure's tombstone). */
export type SubjectKey = DataKey | 'erased';

export interface SubjectKeyStore {
  /**
   * The subject's key for writing, created on first use (concurrent first uses agree on one
   * key); `erased` once the subject was erased: nothing new is encrypted for them again.
   */
  obtain(subjectId: string): Promise<SubjectKey>;

  /**
   * The keys of these subjects for reading, in one round trip; `erased` for an erased subject.
   * A subject the store knows nothing of is left out: not an erasure, which leaves a tombstone,
   * but a key never stored here, or lost.
   */
  find(subjectIds: readonly string[]): Promise<ReadonlyMap<string, SubjectKey>>;

  /**
   * Whether the subject's key was destroyed (a tombstone), told without unwrapping it: a key that
   * does not unwrap must still be erasable, erasure being the remedy for it. `false` for a subject
   * the store knows nothing of.
   */
  isErased(subjectId: string): Promise<boolean>;

  /** Destroys the subject's key for good (idempotent); later `obtain`s answer `erased`. */
  destroy(subjectId: string, at: Date): Promise<void>;
}

/**
 * A stored key that cannot be unwrapped (wrapped under another master key, or damaged), or one
 * that is missing where events were sealed with it. A fault of the data, not of the store's
 * availability: reading it again finds the same.
 */
export class SubjectKeyUnreadableError extends Error {
  override readonly name = 'SubjectKeyUnreadableError';
}
