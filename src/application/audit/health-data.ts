import { appointmentStreamId } from '../../domain/appointment/appointment.decider.js';
import type { RecordedEvent } from '../ports/event-store.js';
import { withPersonalFieldsAs } from '../privacy/personal-data-vault.js';
import type { EventReader } from './stream-history.js';
import { unreadableFieldsOf } from './unreadable-events.js';

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
 * An unreadable event's personal fields read `[unreadable]` already: nothing is left to withhold,
 * and its metadata, which may be what does not parse, is not asked where they are again.
 */
function withheld(event: RecordedEvent): RecordedEvent {
  return unreadableFieldsOf(event) ? event : withPersonalFieldsAs(event, withheldPlaceholder);
}
