import { z } from 'zod';
import { erasedPlaceholder, type PersonalFieldPath } from '../../domain/shared/personal-data.js';
import type { JsonObject, JsonValue } from '../ports/event-store.js';
import { SubjectKeyUnreadableError, type SubjectKey, type SubjectKeyStore } from '../ports/subject-keys.js';
import { openBytes, sealBytes } from './aes-gcm.js';

/**
 * `metadata.personalData` of an event whose personal fields are sealed: whose key sealed them,
 * and where they sit (dotted paths into `data`). Readers need nothing else to reveal them, and
 * since metadata is covered by the hash chain, nobody can quietly re-point an event at another
 * person's key.
 */
export const sealedFieldsSchema = z.object({ subjectId: z.string().min(1), fields: z.array(z.string().min(1)).min(1) });
export type SealedFields = z.infer<typeof sealedFieldsSchema>;

type Sealable = { readonly data: JsonObject; readonly metadata: JsonObject };

export type VaultOptions = {
  /**
   * How long a live key is trusted from memory. Another process may erase its subject meanwhile;
   * what it sealed or revealed in that window is what erasure in a running system has to allow.
   */
  readonly keyCacheMs?: number;
  /** Keys kept in memory at most; the one unused longest goes first. */
  readonly maxCachedKeys?: number;
  readonly now?: () => number;
};

/**
 * Seals personal fields with their subject's data key (AES-256-GCM) before they are stored and
 * reveals them on the way out; once a subject's key is destroyed their fields read
 * `[erased]`. Ciphertext is `base64(iv ‖ tag ‖ ciphertext)` in place of the text, with the
 * subject and field path as additional data, so a sealed value cannot be moved to another field
 * or person unnoticed.
 */
export class PersonalDataVault {
  private readonly keyCacheMs: number;
  private readonly maxCachedKeys: number;
  private readonly now: () => number;
  private readonly cached = new Map<string, { readonly key: SubjectKey; readonly until: number }>();

  constructor(
    private readonly keys: SubjectKeyStore,
    options: VaultOptions = {},
  ) {
    this.keyCacheMs = options.keyCacheMs ?? 60_000;
    this.maxCachedKeys = options.maxCachedKeys ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * `data` with the fields at `paths` sealed for `subjectId`, and the `personalData` metadata
   * that says so (none when every such field is absent). For an erased subject the fields are
   * stored as `[erased]` right away.
   */
  async seal(
    subjectId: string,
    data: JsonObject,
    paths: readonly PersonalFieldPath[],
  ): Promise<{ data: JsonObject; personalData: SealedFields | undefined }> {
    const key = this.fromCache(subjectId) ?? this.remember(subjectId, await this.keys.obtain(subjectId));
    let sealed = data;
    const fields: string[] = [];
    for (const path of paths) {
      const value = valueAt(data, path);
      // An optional field that is absent has nothing to hide.
      if (value === undefined || value === null) continue;
      if (typeof value !== 'string') throw new TypeError(`personal field ${path.join('.')} must be text`);
      const field = path.join('.');
      sealed = withValueAt(sealed, path, key === 'erased' ? erasedPlaceholder : encrypt(key, value, subjectId, field));
      fields.push(field);
    }
    return { data: sealed, personalData: fields.length > 0 ? { subjectId, fields } : undefined };
  }

  /**
   * The events with their sealed fields revealed (or `[erased]`), in the same order; events
   * without sealed fields are returned as they are. Keys missing from memory are fetched in one
   * round trip. Throws `SubjectKeyUnreadableError` for an event whose subject has no key at all.
   */
  async reveal<E extends Sealable>(events: readonly E[]): Promise<E[]> {
    const sealed = events.map(sealedFieldsOf);
    const lost = await this.fetchKeys(sealed.flatMap((fields) => (fields ? [fields.subjectId] : [])));
    return events.map((event, index) => {
      const fields = sealed[index];
      const revealed = this.revealWith(event, fields);
      if (revealed) return revealed;
      if (fields && lost.has(fields.subjectId)) throw new SubjectKeyUnreadableError(lostKeyMessage(fields.subjectId));
      return event;
    });
  }

  /**
   * Brings the keys these events were sealed with into memory, those it lacks in one round trip,
   * so that `revealCached` answers for each event while its key stays (`maxCachedKeys`). An event
   * whose `personalData` does not parse is passed over: revealing it fails on its own.
   */
  async fetchKeysFor(events: readonly { readonly metadata: JsonObject }[]): Promise<void> {
    const subjectIds: string[] = [];
    for (const event of events) {
      const stated = sealedFieldsSchema.safeParse(event.metadata.personalData);
      if (stated.success) subjectIds.push(stated.data.subjectId);
    }
    await this.fetchKeys(subjectIds);
  }

  /**
   * Brings the keys of these subjects into memory; returns those the store has no key for, not
   * even a tombstone. `seal` stores a subject's key before anything is sealed with it, and
   * erasure keeps the row, so such a key was lost (its row deleted, the key store restored from
   * before it was made): their events are unreadable, not erased. Nothing is remembered of them,
   * so a restored row is found on the next look.
   */
  private async fetchKeys(subjectIds: readonly string[]): Promise<ReadonlySet<string>> {
    const missing = new Set<string>();
    for (const subjectId of subjectIds) if (this.fromCache(subjectId) === undefined) missing.add(subjectId);
    const lost = new Set<string>();
    if (missing.size === 0) return lost;
    const found = await this.keys.find([...missing]).catch((error: unknown) => {
      throw error instanceof SubjectKeyUnreadableError ? error : new KeyStoreUnavailableError(error);
    });
    for (const subjectId of missing) {
      const key = found.get(subjectId);
      if (key === undefined) lost.add(subjectId);
      else this.remember(subjectId, key);
    }
    return lost;
  }

  /**
   * The event revealed from keys in memory alone: `undefined` when a key is missing (then use
   * `reveal`); the event itself when nothing in it is sealed.
   */
  revealCached<E extends Sealable>(event: E): E | undefined {
    return this.revealWith(event, sealedFieldsOf(event));
  }

  private revealWith<E extends Sealable>(event: E, sealed: SealedFields | undefined): E | undefined {
    if (!sealed) return event;
    const key = this.fromCache(sealed.subjectId);
    if (key === undefined) return undefined;
    // A field sealed after the erasure is stored as the placeholder already; a process whose
    // cache still holds the destroyed key tried to decrypt it, and answered 500.
    return withSealedFields(event, sealed.fields, (value, field) =>
      key === 'erased' || value === erasedPlaceholder ? erasedPlaceholder : decrypt(key, value, sealed.subjectId, field),
    );
  }

  /** Destroys the subject's key for good: everything sealed with it reads `[erased]` from now on. */
  async erase(subjectId: string, at: Date): Promise<void> {
    await this.keys.destroy(subjectId, at);
    this.markErased(subjectId);
  }

  /**
   * Whether the subject's key is destroyed. A tombstone in memory is enough, erasure being final;
   * a live key in memory is not: another process may have destroyed it since, so the store is asked,
   * without unwrapping the key: one that does not unwrap is what erasure is the remedy for.
   */
  async isErased(subjectId: string): Promise<boolean> {
    if (this.cached.get(subjectId)?.key === 'erased') return true;
    const erased = await this.keys.isErased(subjectId).catch((error: unknown) => {
      throw new KeyStoreUnavailableError(error);
    });
    if (!erased) return false;
    this.markErased(subjectId);
    return true;
  }

  /** Stops using a subject's key from memory: their key was destroyed, maybe by another process. */
  markErased(subjectId: string): void {
    this.cached.delete(subjectId);
    this.cached.set(subjectId, { key: 'erased', until: Number.POSITIVE_INFINITY });
  }

  private fromCache(subjectId: string): SubjectKey | undefined {
    const entry = this.cached.get(subjectId);
    if (!entry) return undefined;
    this.cached.delete(subjectId);
    if (entry.until < this.now()) return undefined;
    // Back in at the newest end: the keys in use stay, and a full cache lets go of the key
    // unused longest rather than the one fetched first, which a long read meets on every page.
    this.cached.set(subjectId, entry);
    return entry.key;
  }

  private remember(subjectId: string, key: SubjectKey): SubjectKey {
    // Erasure is final, so an erased subject never needs asking about again; and a lookup that
    // began before the erasure and ends after it must not bring the destroyed key back.
    if (this.cached.get(subjectId)?.key === 'erased') return 'erased';
    const until = key === 'erased' ? Number.POSITIVE_INFINITY : this.now() + this.keyCacheMs;
    this.cached.delete(subjectId);
    this.cached.set(subjectId, { key, until });
    if (this.cached.size > this.maxCachedKeys) {
      const oldest = this.cached.keys().next();
      if (!oldest.done) this.cached.delete(oldest.value);
    }
    return key;
  }
}

function lostKeyMessage(subjectId: string): string {
  return `subject ${subjectId} has no data key, nor the tombstone an erasure leaves: its key row was deleted, or the key store restored from before it was made`;
}

/** The event's `personalData` metadata, when its personal fields are sealed. */
export function sealedFieldsOf(event: { readonly metadata: JsonObject }): SealedFields | undefined {
  const stated = event.metadata.personalData;
  if (stated === undefined) return undefined;
  return sealedFieldsSchema.parse(stated);
}

/**
 * The event with each of its personal fields reading `text`: for a reader who may see that the
 * event happened, not what a person wrote in it.
 */
export function withPersonalFieldsAs<E extends Sealable>(event: E, text: string): E {
  const sealed = sealedFieldsOf(event);
  return sealed ? withSealedFields(event, sealed.fields, () => text) : event;
}

/**
 * The event with each of `fields` (dotted paths into `data`) that holds text reading `text`,
 * whatever its `personalData` metadata says: that may be what is wrong with the event.
 */
export function withFieldsAs<E extends Sealable>(event: E, fields: readonly string[], text: string): E {
  return withSealedFields(event, fields, () => text);
}

/** The event with each of `fields` that holds text replaced by what `replace` makes of it. */
function withSealedFields<E extends Sealable>(event: E, fields: readonly string[], replace: (value: string, field: string) => string): E {
  let data = event.data;
  for (const field of fields) {
    const path = field.split('.');
    const value = valueAt(event.data, path);
    if (typeof value === 'string') data = withValueAt(data, path, replace(value, field));
  }
  return { ...event, data };
}

function encrypt(key: Buffer, text: string, subjectId: string, field: string): string {
  return sealBytes(key, Buffer.from(text, 'utf8'), Buffer.from(`${subjectId}\0${field}`, 'utf8')).toString('base64');
}

function decrypt(key: Buffer, sealed: string, subjectId: string, field: string): string {
  return openBytes(key, Buffer.from(sealed, 'base64'), Buffer.from(`${subjectId}\0${field}`, 'utf8')).toString('utf8');
}

function valueAt(data: JsonObject, path: PersonalFieldPath): JsonValue | undefined {
  let value: JsonValue | undefined = data;
  for (const name of path) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    value = value[name];
  }
  return value;
}

function withValueAt(data: JsonObject, path: PersonalFieldPath, value: string): JsonObject {
  const [name, ...rest] = path;
  if (name === undefined) return data;
  if (rest.length === 0) return { ...data, [name]: value };
  const inner = data[name];
  if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return data;
  return { ...data, [name]: withValueAt(inner, rest, value) };
}

/**
 * The key store did not answer a lookup: a passing fault (the database away), not a fault of the
 * events, which a reader retries rather than report as an event it cannot read.
 */
export class KeyStoreUnavailableError extends Error {
  override readonly name = 'KeyStoreUnavailableError';

  constructor(cause: unknown) {
    super(`The key store did not answer: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
