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

export type ChainBreakReason =
  /** The event carries no chain fields: appended outside the command loop, or stripped. */
  | 'missing-hash'
  /** Its `prevHash` is not its predecessor's hash: an event before it was removed or replaced. */
  | 'prev-hash-mismatch'
  /** Its content no longer gives its hash: it was edited after it was appended. */
  | 'hash-mismatch'
  /** Revisions are not 0, 1, 2, …: an event was removed. */
  | 'revision-gap';

export type ChainVerification =
  | { readonly status: 'intact'; readonly eventsChecked: number; readonly lastHash: string }
  | {
      readonly status: 'broken';
      readonly eventsChecked: number;
      /** The first revision whose link does not hold. */
      readonly brokenAt: { readonly revision: number; readonly reason: ChainBreakReason; readonly eventId: string };
    };

/** Why `event` does not link to a predecessor with `prevHash` at the revision before `expectedRevision`; `undefined` when it does. */
export function brokenLink(prevHash: string, expectedRevision: number, event: RecordedEvent): ChainBreakReason | undefined {
  if (event.revision !== expectedRevision) return 'revision-gap';
  const hash = storedHash(event);
  if (hash === undefined) return 'missing-hash';
  if (storedPrevHash(event) !== prevHash) return 'prev-hash-mismatch';
  if (eventHash(prevHash, event) !== hash) return 'hash-mismatch';
  return undefined;
}

/** Recomputes one stream's chain in revision order and stops at the first broken link. */
export async function verifyChain(events: AsyncIterable<RecordedEvent> | Iterable<RecordedEvent>): Promise<ChainVerification> {
  let prevHash = genesisHash;
  let expectedRevision = 0;
  for await (const event of events) {
    const reason = brokenLink(prevHash, expectedRevision, event);
    if (reason) return { status: 'broken', eventsChecked: expectedRevision + 1, brokenAt: { revision: event.revision, reason, eventId: event.id } };
    prevHash = storedHash(event) ?? prevHash;
    expectedRevision++;
  }
  return { status: 'intact', eventsChecked: expectedRevision, lastHash: prevHash };
}
