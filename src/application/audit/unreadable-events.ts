import type { EventStore, RecordedEvent } from '../ports/event-store.js';
import { sealedFieldsSchema, withFieldsAs, type PersonalDataVault } from '../privacy/personal-data-vault.js';
import { RevealingEventStore, type UnrevealableEventError } from '../privacy/revealing-event-store.js';
import { aggregateOf, type EventReader } from './stream-history.js';

/**
 * What a personal field reads in the audit trail when it cannot be revealed: ciphertext that
 * does not open, a key that cannot be unwrapped, `personalData` metadata that does not parse.
 * Unlike `[erased]`, nothing meant this: the event needs looking into.
 */
export const unreadablePlaceholder = '[unreadable]';

/**
 * Where the mark sits: a symbol, so that it survives the copies readers make of an event
 * (`{ ...event, data }`) but never reaches what is serialized or hashed.
 */
const unreadableMark = Symbol('unreadableFields');

type Marked = RecordedEvent & { readonly [unreadableMark]?: readonly string[] };

/** The fields (dotted paths into `data`) that read `[unreadable]`, when the event could not be revealed. */
export function unreadableFieldsOf(event: RecordedEvent): readonly string[] | undefined {
  const marked: Marked = event;
  return marked[unreadableMark];
}

/**
 * The log as the audit trail reads it: revealed, or `[erased]`, like every other reader's, but an
 * event that cannot be revealed is shown rather than ending the read, its personal fields reading
 * `[unreadable]` (see `unreadableFieldsOf`). A key store that does not answer still fails the
 * read: that passes, and the event is not unreadable.
 */
export function revealingForAudit(stored: EventStore, vault: PersonalDataVault): EventReader {
  return new RevealingEventStore(stored, vault, { unrevealable: markedUnreadable });
}

function markedUnreadable({ event }: UnrevealableEventError): RecordedEvent {
  const stated = sealedFieldsSchema.safeParse(event.metadata.personalData);
  // Metadata that does not parse cannot say where the sealed fields are; the event's schema can.
  const fields = stated.success ? stated.data.fields : declaredPersonalFields(event);
  const marked: Marked = { ...withFieldsAs(event, fields, unreadablePlaceholder), [unreadableMark]: fields };
  return marked;
}

/** The fields (dotted paths) the schema of the event's type declares personal, whatever its metadata says. */
export function declaredPersonalFields(event: RecordedEvent): string[] {
  return (aggregateOf(event.streamId)?.codec.personalFields(event.type) ?? []).map((path) => path.join('.'));
}
