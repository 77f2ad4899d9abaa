import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookAppointment } from '../../src/application/appointments/appointment.use-cases.js';
import { unreadableFieldsOf, unreadablePlaceholder, revealingForAudit } from '../../src/application/audit/unreadable-events.js';
import type { EventReader } from '../../src/application/audit/stream-history.js';
import type { Actor } from '../../src/application/metadata.js';
import type { RecordedEvent } from '../../src/application/ports/event-store.js';
import { eraseSubject } from '../../src/application/privacy/erase-subject.use-case.js';
import { RevealingEventStore, UnrevealableEventError } from '../../src/application/privacy/revealing-event-store.js';
import { setSchedule } from '../../src/application/schedules/schedule.use-cases.js';
import { erasedPlaceholder } from '../../src/domain/shared/personal-data.js';
import { PgRecordsOutsideTheLog } from '../../src/infrastructure/privacy/pg-records-outside-the-log.js';
import { createHarness, type Harness } from '../projections/support/runtime-harness.js';
import { registerUser } from '../projections/support/scenarios.js';
import { admin, as, createTestSide, doctor, everyMorning, fakeClock, patient } from '../support/command-side.js';
import { pgVault } from '../support/personal-data.js';

/**
 * A subject's key row is made before anything is sealed with it, and erasure keeps it as a
 * tombstone: an event sealed for a subject who has no row at all lost its key (a row deleted, a
 * restore of the key store older than the log). That is no erasure, and does not read as one.
 */
describe('an event whose key row is missing', () => {
  let h: Harness;
  const erased: Actor = { id: 'patient-2', roles: ['PATIENT'] };
  let lostKey: string;
  let erasedKey: string;
  type KeyRow = { subject_id: string; wrapped_key: Buffer; wrapped_with: string; created_at: Date };
  let deletedRows: KeyRow[];

  beforeAll(async () => {
    h = await createHarness();
    const side = createTestSide(h.store, fakeClock('2030-01-01T08:00:00Z'), 15, pgVault(h.pool));
    await registerUser(side, doctor, 'Dr Ada');
    await registerUser(side, patient, 'Pat');
    await registerUser(side, erased, 'Sam');
    await setSchedule(side, doctor.id, everyMorning, as(doctor));
    lostKey = `appointment-${(await bookAppointment(side, { doctorId: doctor.id, start: '2030-01-14T09:00:00Z', reason: 'back pain' }, as(patient))).id}`;
    erasedKey = `appointment-${(await bookAppointment(side, { doctorId: doctor.id, start: '2030-01-15T09:00:00Z', reason: 'migraine' }, as(erased))).id}`;

    // The owner deletes the patient's key row; the other patient is erased as the service erases.
    deletedRows = (await h.pool.query<KeyRow>('DELETE FROM subject_keys WHERE subject_id = $1 RETURNING *', [patient.id])).rows;
    await eraseSubject({ side, vault: pgVault(h.pool), outsideTheLog: new PgRecordsOutsideTheLog(h.pool) }, erased.id, as(admin));
  });
  afterAll(() => h.close());

  const eventsOf = async (reader: EventReader, streamId: string): Promise<RecordedEvent[]> => {
    const read = await reader.readStream(streamId);
    const events: RecordedEvent[] = [];
    if (read.status === 'found') for await (const event of read.events) events.push(event);
    return events;
  };

  it('reads [unreadable] in the audit trail, named in its unreadable fields, not [erased]', async () => {
    const [scheduled] = await eventsOf(revealingForAudit(h.store, pgVault(h.pool)), lostKey);
    expect(scheduled?.data).toMatchObject({ patientId: patient.id, reason: unreadablePlaceholder });
    expect(scheduled && unreadableFieldsOf(scheduled)).toEqual(['reason']);
  });

  it('stops a projector at the event, as a key that does not open does', async () => {
    await expect(eventsOf(new RevealingEventStore(h.store, pgVault(h.pool)), lostKey)).rejects.toBeInstanceOf(UnrevealableEventError);
  });

  it('is not remembered as lost: the row restored, the same vault reads the event again', async () => {
    const vault = pgVault(h.pool);
    const reader = new RevealingEventStore(h.store, vault);
    await expect(eventsOf(reader, lostKey)).rejects.toBeInstanceOf(UnrevealableEventError);
    expect(deletedRows).toHaveLength(1);
    for (const row of deletedRows) {
      await h.pool.query('INSERT INTO subject_keys (subject_id, wrapped_key, wrapped_with, created_at) VALUES ($1, $2, $3, $4)', [
        row.subject_id,
        row.wrapped_key,
        row.wrapped_with,
        row.created_at,
      ]);
    }
    try {
      const [scheduled] = await eventsOf(reader, lostKey);
      expect(scheduled?.data).toMatchObject({ reason: 'back pain' });
    } finally {
      await h.pool.query('DELETE FROM subject_keys WHERE subject_id = $1', [patient.id]);
    }
  });

  it('leaves a real erasure reading [erased], with nothing unreadable', async () => {
    const [scheduled] = await eventsOf(revealingForAudit(h.store, pgVault(h.pool)), erasedKey);
    expect(scheduled?.data).toMatchObject({ patientId: erased.id, reason: erasedPlaceholder });
    expect(scheduled && unreadableFieldsOf(scheduled)).toBeUndefined();
  });
});
