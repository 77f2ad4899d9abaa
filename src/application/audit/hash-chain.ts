import { hash } from 'node:crypto';
import type { JsonObject, JsonValue, RecordedEvent } from '../ports/event-store.js';

/**
 * Tamper evidence for the event log: each event of a stream carries `prevHash` (its
 * predecessor's hash), `hash` and `chainVersion` in its metadata, where (version 2)
 *
 *   hash = sha256_hex(prevHash ‖ canonical({ type, data, metadata without `hash`, revision, streamId, eventId }))
 *
 * so editing any stored event, inserting or removing one, or moving events to another stream or
 * giving one another id, breaks the chain from there on. `chainVersion` is inside the hashed
 * metadata: rewriting or removing it (to have a version-2 event checked the old way) is itself an
 * edit, and breaks the link.
 *
 * Version 1, the events written before version 2 (no `chainVersion`), covered only
 * `{ type, data, metadata without hash, revision }`: they still verify as they are, and a stream
 * may hold them followed by version-2 events, but what they say about where they belong is not
 * covered: moving or renaming a stream's version-1 events shows nowhere in themselves.
 *
 * The command loop computes it over exactly what it stores (JSON), so any event store can
 * carry it; verification reads it back from whichever store.
 */

/** The `prevHash` of a stream's first event. */
export const genesisHash = '0'.repeat(64);

/**
 * JSON with object keys sorted recursively and no whitespace: the same value always gives the
 * same text, whatever key order a store (jsonb) hands back. `undefined` members are dropped,
 * as JSON itself drops them.
 */
export function canonicalJson(value: JsonValue): string {
  // Concatenation rather than map/join: every command hashes its events through this.
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i++) text += (i === 0 ? '' : ',') + canonicalJson(value[i] ?? null);
    return `${text}]`;
  }
  let text = '{';
  for (const key of Object.keys(value).sort()) {
    const member = value[key];
    if (member === undefined) continue;
    text += (text.length === 1 ? '' : ',') + quotedKey(key) + ':' + canonicalJson(member);
  }
  return `${text}}`;
}

/** Keys are few (field names of events and metadata), and quoting them was a third of the work. */
const quotedKeys = new Map<string, string>();

function quotedKey(key: string): string {
  let quoted = quotedKeys.get(key);
  if (quoted === undefined) {
    quoted = JSON.stringify(key);
    // Bounded: keys that are data (a map keyed by ids) must not grow it for ever.
    if (quotedKeys.size < 10_000) quotedKeys.set(key, quoted);
  }
  return quoted;
}

export function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

/** The chain version the command loop writes; see the module comment. */
export const chainVersion = 2;

/** What a chain link covers. `metadata` may hold `hash` already: it is left out. */
export type ChainedContent = {
  readonly streamId: string;
  /** The event id. */
  readonly id: string;
  readonly type: string;
  readonly data: JsonObject;
  readonly metadata: JsonObject;
  readonly revision: number;
};

/**
 * The hash `event` links to `prevHash` with, by the chain version its metadata names (none:
 * version 1); `undefined` for a version this code does not know, which nothing can verify.
 */
export function eventHash(prevHash: string, event: ChainedContent): string | undefined {
  const { hash: _hash, ...covered } = event.metadata;
  const version = covered.chainVersion;
  if (version === undefined) return version1Hash(prevHash, event, covered);
  return version === 2 ? version2Hash(prevHash, event, covered) : undefined;
}

function version1Hash(prevHash: string, event: ChainedContent, covered: JsonObject): string {
  return sha256Hex(prevHash + canonicalJson({ type: event.type, data: event.data, metadata: covered, revision: event.revision }));
}

function version2Hash(prevHash: string, event: ChainedContent, covered: JsonObject): string {
  // Lower case: the form PostgreSQL's uuid column reads an id back in, whatever case it was given.
  const content = { type: event.type, data: event.data, metadata: covered, revision: event.revision, streamId: event.streamId, eventId: event.id.toLowerCase() };
  return sha256Hex(prevHash + canonicalJson(content));
}

/** `metadata` extended with its link in the chain (current version): `chainVersion` and `prevHash`, then the `hash` over it all. */
export function chainMetadata(prevHash: string, event: ChainedContent): JsonObject {
  const { hash: _hash, ...metadata } = event.metadata;
  const linked = { ...metadata, chainVersion, prevHash };
  return { ...linked, hash: version2Hash(prevHash, event, linked) };
}

/** The chain hash stored on an event, if it has one. */
export function storedHash(event: { readonly metadata: JsonObject }): string | undefined {
  const hash = event.metadata.hash;
  return typeof hash === 'string' ? hash : undefined;
}

export function storedPrevHash(event: { readonly metadata: JsonObject }): string | undefined {
  const prevHash = event.metadata.prevHash;
  return typeof prevHash === 'string' ? prevHash : undefined;
}

/**
 * The hash the next event should link to after `event`: its stored hash, or — for an event
 * appended outside the command loop, which has none — one computed over it as it reads now, so
 * the chain goes on after it (verification lists it as unhashed). That one is always computed as
 * version 1, as it always was (links made to such events before version 2 still hold): whatever
 * such an event says, the hashed event after it covers its own stream and id.
 */
export function linkHash(prevHash: string, event: ChainedContent): string {
  const stored = storedHash(event);
  if (stored !== undefined) return stored;
  const { hash: _hash, ...covered } = event.metadata;
  return version1Hash(prevHash, event, covered);
}

/** Why a link does not hold: evidence that the stream changed after it was appended. */
export type ChainBreakReason =
  /** Its `prevHash` is not its predecessor's hash: the event before it was removed or replaced, or edited when that one has no hash of its own (never had, or stripped). */
  | 'prev-hash-mismatch'
  /** Its content no longer gives its hash: it was edited after it was appended (version 2: or moved to another stream, or given another id), or names a chain version nothing computes. */
  | 'hash-mismatch'
  /** Revisions are not 0, 1, 2, …: an event was removed. */
  | 'revision-gap';

/**
 * An event without chain fields: appended outside the command loop, or its hash stripped. The
 * next event the loop appends links to a hash computed over it (`linkHash`), so once a hashed
 * event follows, an edit of it breaks that link (`prev-hash-mismatch`): it is verified. One with
 * no hashed event after it (a stream's unverified tail) is covered by nothing: an edit of it, or
 * of a hashed event stripped to hide the edit, shows nowhere.
 */
export type UnhashedEvent = { readonly revision: number; readonly eventId: string };

export type ChainVerification =
  | {
      readonly status: 'intact';
      readonly eventsChecked: number;
      readonly lastHash: string;
      /** Events without a hash of their own, each covered by a later event's link. */
      readonly unhashed: readonly UnhashedEvent[];
    }
  | {
      /** Every link holds, but the stream ends in events without a hash that no link covers yet. */
      readonly status: 'unverified-tail';
      readonly eventsChecked: number;
      /** What the next event must link to: computed over the tail as it reads now, so vouching for nothing. */
      readonly lastHash: string;
      readonly unhashed: readonly UnhashedEvent[];
      /** The tail's first event; every event from it to the stream's end is unverified. */
      readonly unverifiedFrom: UnhashedEvent;
    }
  | {
      readonly status: 'broken';
      readonly eventsChecked: number;
      /** The first revision whose link does not hold. */
      readonly brokenAt: { readonly revision: number; readonly reason: ChainBreakReason; readonly eventId: string };
      /** The events without a hash before it. */
      readonly unhashed: readonly UnhashedEvent[];
    };

/** One event checked against its predecessor: `hash` is what the next event must link to. */
export type LinkCheck =
  | { readonly outcome: 'linked' | 'unhashed'; readonly hash: string }
  | { readonly outcome: 'broken'; readonly reason: ChainBreakReason };

/**
 * `event` checked against a predecessor with `prevHash` at the revision before `expectedRevision`.
 * Past an event without a hash, the next link is the one the command loop made (`linkHash`), so
 * verification goes on exactly where the loop did; that event is only verified once a `linked`
 * event follows it.
 */
export function checkLink(prevHash: string, expectedRevision: number, event: RecordedEvent): LinkCheck {
  if (event.revision !== expectedRevision) return { outcome: 'broken', reason: 'revision-gap' };
  const hash = storedHash(event);
  if (hash === undefined) return { outcome: 'unhashed', hash: linkHash(prevHash, event) };
  if (storedPrevHash(event) !== prevHash) return { outcome: 'broken', reason: 'prev-hash-mismatch' };
  if (eventHash(prevHash, event) !== hash) return { outcome: 'broken', reason: 'hash-mismatch' };
  return { outcome: 'linked', hash };
}

/**
 * Recomputes one stream's chain in revision order, past events without a hash, and stops at the
 * first broken link. Each event is checked against the stream and id it is read with (version 2). Those a later link covers are listed; those at the end are the unverified tail.
 */
export async function verifyChain(events: AsyncIterable<RecordedEvent> | Iterable<RecordedEvent>): Promise<ChainVerification> {
  let prevHash = genesisHash;
  let expectedRevision = 0;
  const unhashed: UnhashedEvent[] = [];
  // Unhashed events since the last hashed one: covered once a hashed event links to them.
  let uncovered: UnhashedEvent[] = [];
  for await (const event of events) {
    const link = checkLink(prevHash, expectedRevision, event);
    if (link.outcome === 'broken') {
      const brokenAt = { revision: event.revision, reason: link.reason, eventId: event.id };
      return { status: 'broken', eventsChecked: expectedRevision + 1, brokenAt, unhashed: [...unhashed, ...uncovered] };
    }
    if (link.outcome === 'unhashed') {
      uncovered.push({ revision: event.revision, eventId: event.id });
    } else if (uncovered.length > 0) {
      unhashed.push(...uncovered);
      uncovered = [];
    }
    prevHash = link.hash;
    expectedRevision++;
  }
  const [unverifiedFrom] = uncovered;
  if (unverifiedFrom) return { status: 'unverified-tail', eventsChecked: expectedRevision, lastHash: prevHash, unhashed, unverifiedFrom };
  return { status: 'intact', eventsChecked: expectedRevision, lastHash: prevHash, unhashed };
}
