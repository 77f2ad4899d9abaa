import { hash } from 'node:crypto';
import type { JsonObject, JsonValue, RecordedEvent } from '../ports/event-store.js';

/**
 * Tamper evidence for the event log: each event of a stream carries `prevHash` (its
 * predecessor's hash) and `hash` in its metadata, where
 *
 *   hash = sha256_hex(prevHash ‖ canonical({ type, data, metadata without `hash`, revision }))
 *
 * so editing any stored event, or inserting or removing one, breaks the chain from there on.
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

/** What a chain link covers. `metadata` may hold `hash` already: it is left out. */
export type ChainedContent = {
  readonly type: string;
  readonly data: JsonObject;
  readonly metadata: JsonObject;
  readonly revision: number;
};

export function eventHash(prevHash: string, event: ChainedContent): string {
  const { hash: _hash, ...covered } = event.metadata;
  return sha256Hex(prevHash + canonicalJson({ type: event.type, data: event.data, metadata: covered, revision: event.revision }));
}

/** `metadata` extended with its link in the chain: `prevHash`, then the `hash` over it all. */
export function chainMetadata(prevHash: string, event: ChainedContent): JsonObject {
  const linked = { ...event.metadata, prevHash };
  return { ...linked, hash: eventHash(prevHash, { ...event, metadata: linked }) };
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
 * appended outside the command loop, which has none — one computed over it, so the chain goes
 * on after the gap (verify still reports the gap).
 */
export function linkHash(prevHash: string, event: ChainedContent): string {
  return storedHash(event) ?? eventHash(prevHash, event);
}

/** Why a link does not hold: evidence that the stream changed after it was appended. */
export type ChainBreakReason =
  /** Its `prevHash` is not its predecessor's hash: the event before it was removed or replaced, or edited when it had no hash of its own. */
  | 'prev-hash-mismatch'
  /** Its content no longer gives its hash: it was edited after it was appended. */
  | 'hash-mismatch'
  /** Revisions are not 0, 1, 2, …: an event was removed. */
  | 'revision-gap';

/**
 * An event without chain fields (`missing-hash`): appended outside the command loop, or its
 * hash stripped. Not a break: the next event's link covers it as the loop computed it, so an
 * edit of it breaks that link; only a gap at a stream's end is covered by nothing yet.
 */
export type ChainGap = { readonly revision: number; readonly eventId: string };

export type ChainVerification =
  | {
      /** `intact-with-gaps`: every link holds, and `gaps` lists events without a hash of their own. */
      readonly status: 'intact' | 'intact-with-gaps';
      readonly eventsChecked: number;
      readonly lastHash: string;
      readonly gaps: readonly ChainGap[];
    }
  | {
      readonly status: 'broken';
      readonly eventsChecked: number;
      /** The first revision whose link does not hold. */
      readonly brokenAt: { readonly revision: number; readonly reason: ChainBreakReason; readonly eventId: string };
      /** The gaps before it. */
      readonly gaps: readonly ChainGap[];
    };

/** One event checked against its predecessor: `hash` is what the next event must link to. */
export type LinkCheck =
  | { readonly outcome: 'linked' | 'gap'; readonly hash: string }
  | { readonly outcome: 'broken'; readonly reason: ChainBreakReason };

/**
 * `event` checked against a predecessor with `prevHash` at the revision before `expectedRevision`.
 * Past a gap, the next link is the one the command loop made (`linkHash`), so verification goes
 * on exactly where the loop did.
 */
export function checkLink(prevHash: string, expectedRevision: number, event: RecordedEvent): LinkCheck {
  if (event.revision !== expectedRevision) return { outcome: 'broken', reason: 'revision-gap' };
  const hash = storedHash(event);
  if (hash === undefined) return { outcome: 'gap', hash: linkHash(prevHash, event) };
  if (storedPrevHash(event) !== prevHash) return { outcome: 'broken', reason: 'prev-hash-mismatch' };
  if (eventHash(prevHash, event) !== hash) return { outcome: 'broken', reason: 'hash-mismatch' };
  return { outcome: 'linked', hash };
}

/** Recomputes one stream's chain in revision order, past gaps, and stops at the first broken link. */
export async function verifyChain(events: AsyncIterable<RecordedEvent> | Iterable<RecordedEvent>): Promise<ChainVerification> {
  let prevHash = genesisHash;
  let expectedRevision = 0;
  const gaps: ChainGap[] = [];
  for await (const event of events) {
    const link = checkLink(prevHash, expectedRevision, event);
    if (link.outcome === 'broken') {
      return { status: 'broken', eventsChecked: expectedRevision + 1, brokenAt: { revision: event.revision, reason: link.reason, eventId: event.id }, gaps };
    }
    if (link.outcome === 'gap') gaps.push({ revision: event.revision, eventId: event.id });
    prevHash = link.hash;
    expectedRevision++;
  }
  return { status: gaps.length === 0 ? 'intact' : 'intact-with-gaps', eventsChecked: expectedRevision, lastHash: prevHash, gaps };
}
