import { describe, expect, it } from 'vitest';
import { createEventCodec } from '../../src/application/command-handling/event-codec.js';
import { doctorScheduleDecider } from '../../src/domain/doctor-schedule/doctor-schedule.decider.js';
import { doctorScheduleEventSchema } from '../../src/domain/doctor-schedule/doctor-schedule.events.js';
import { doctorScheduleUpcasters } from '../../src/domain/doctor-schedule/doctor-schedule.upcasters.js';

const noHours = { mon: [], tue: [], wed: [], thu: [], fri: [], sat: [], sun: [] };
const v1 = {
  doctorId: 'doctor-1',
  timeZone: 'Europe/Berlin',
  slotMinutes: 30,
  weeklyHours: { ...noHours, mon: [{ from: '09:00', to: '12:00' }] },
  daysOff: [],
  affectedAppointmentIds: [],
  setAt: '2026-03-02T08:00:00.000Z',
};
const codec = createEventCodec(doctorScheduleEventSchema, doctorScheduleUpcasters);

describe('ScheduleSet v1 → v2', () => {
  it('reads a schedule set before specialties were recorded as publishing none', () => {
    expect(codec.schemaVersion('ScheduleSet')).toBe(2);
    const event = codec.decode({ type: 'ScheduleSet', data: v1, metadata: { schemaVersion: 1 } });
    expect(event).toEqual({ type: 'ScheduleSet', data: { ...v1, specialty: null } });
    expect(doctorScheduleDecider.evolve(doctorScheduleDecider.initialState, event)).toMatchObject({ status: 'active', specialty: null });
  });

  it('reads a version 2 event as written', () => {
    const event = codec.decode({ type: 'ScheduleSet', data: { ...v1, specialty: 'Cardiology' }, metadata: { schemaVersion: 2 } });
    expect(event.type === 'ScheduleSet' && event.data.specialty).toBe('Cardiology');
  });

  it('refuses stored data that is not a v1 ScheduleSet', () => {
    expect(() => codec.decode({ type: 'ScheduleSet', data: { ...v1, slotMinutes: 'half an hour' }, metadata: { schemaVersion: 1 } })).toThrow();
  });
});
