import { appointmentStreamId } from '../../domain/appointment/appointment.decider.js';
import type { RecordedEvent } from '../ports/event-store.js';
import { withFieldsAs } from '../privacy/personal-data-vault.js';
import type { EventReader } from './stream-history.js';
import { declaredPersonalFields, unreadableFieldsOf } from './unreadable-events.js';

/** What a field of health data reads to someone without the right to it. */
export const withheldPlaceholder = '[withheld]';

const appointmentStreams = appointmentStreamId('');

/**
 * The audit trail for an admin who is no auditor. Health data (the personal fields of
 * appointments: reasons for visit, clinical notes, why one was cancelled) is for the patient,
 * the doctor and the auditors; an appointment shows its notes to no admin (API.md), and the
 * audit trail must not be the way round that. The admin still sees every event, who caused it
 * and when, and the fields read `[withheld]`.
 */
export function withholdingHealthData(reader: EventReader): EventReader {
  return {
    readStream: async (streamId, options) => {
      const read = await reader.readStream(streamId, options);
      return read.status === 'found' ? { status: 'found', events: withheldEach(read.events) } : read;
    },
    readAll: (options) => withheldEach(reader.readAll(options)),
  };
}

async function* withheldEach(events: AsyncIterable<RecordedEvent>): AsyncGenerator<RecordedEvent> {
  for await (const event of events) yield event.streamId.startsWith(appointmentStreams) ? withheld(event) : event;
}

/**
 * The fields withheld are those the event's schema declares personal, not those its metadata says
 * were sealed: an event stored before sealing existed, or appended outside the command loop, has
 * no such metadata and its health data in clear, and an unreadable one's metadata may name others.
 * Those that read `[unreadable]` already are left so, as its `unreadableFields` say.
 */
function withheld(event: RecordedEvent): RecordedEvent {
  const unreadable = unreadableFieldsOf(event) ?? [];
  const fields = declaredPersonalFields(event).filter((field) => !unreadable.includes(field));
  return withFieldsAs(event, fields, withheldPlaceholder);
}
