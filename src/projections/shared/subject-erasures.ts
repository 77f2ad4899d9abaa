import type { RecordedEvent } from '../../application/ports/event-store.js';
import { subjectErasedSchema, subjectErasedType } from '../../domain/user/user.events.js';

/**
 * The people erased in this batch. A read model scrubs their personal text from rows built
 * before the erasure (which were built from revealed events); events after it reveal
 * `[erased]` already, so scrubbing once the batch is folded is enough.
 */
export function erasedSubjects(events: readonly RecordedEvent[]): string[] {
  return events.filter((event) => event.type === subjectErasedType).map((event) => subjectErasedSchema.parse(event).data.userId);
}
