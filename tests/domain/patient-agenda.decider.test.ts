import { describe, expect, it } from 'vitest';
import type { MoveTime, ReleaseTime, ReserveTime } from '../../src/domain/patient-agenda/patient-agenda.commands.js';
import { patientAgendaDecider, patientAgendaStreamId } from '../../src/domain/patient-agenda/patient-agenda.decider.js';
import type { TimeMoved, TimeReleased, TimeReserved } from '../../src/domain/patient-agenda/patient-agenda.events.js';
import { deciderSpec } from '../support/decider-spec.js';

const spec = deciderSpec(patientAgendaDecider);
const patientId = 'patient-1';

const nine = '2026-05-04T09:00:00.000Z';
const half = '2026-05-04T09:30:00.000Z';
const ten = '2026-05-04T10:00:00.000Z';
const eleven = '2026-05-04T11:00:00.000Z';

const reserve = (appointmentId: string, start: string, end: string): ReserveTime => ({
  type: 'ReserveTime',
  data: { patientId, appointmentId, start, end },
});
const reserved = (appointmentId: string, start: string, end: string): TimeReserved => ({
  type: 'TimeReserved',
  data: { patientId, appointmentId, start, end },
});
const release = (appointmentId: string): ReleaseTime => ({ type: 'ReleaseTime', data: { patientId, appointmentId } });
const released = (appointmentId: string, start: string, end: string): TimeReleased => ({
  type: 'TimeReleased',
  data: { patientId, appointmentId, start, end },
});
const move = (appointmentId: string, newStart: string, newEnd: string): MoveTime => ({
  type: 'MoveTime',
  data: { patientId, appointmentId, newStart, newEnd },
});
const moved = (appointmentId: string, [previousStart, previousEnd]: [string, string], [start, end]: [string, string]): TimeMoved => ({
  type: 'TimeMoved',
  data: { patientId, appointmentId, previousStart, previousEnd, start, end },
});

describe('PatientAgenda stream', () => {
  it('is named patientAgenda-<patientId>', () => {
    expect(patientAgendaStreamId('p-9')).toBe('patientAgenda-p-9');
  });
});

describe('ReserveTime', () => {
  it("reserves the patient's first time", () => {
    spec.given([]).when(reserve('a-1', nine, half)).then([reserved('a-1', nine, half)]);
  });

  it('writes the times in UTC whatever offset the command used', () => {
    spec.given([]).when(reserve('a-1', '2026-05-04T11:00:00+02:00', '2026-05-04T11:30:00+02:00')).then([reserved('a-1', nine, half)]);
  });

  it('reserves time with another doctor that does not overlap', () => {
    spec.given([reserved('a-1', nine, half)]).when(reserve('a-2', ten, eleven)).then([reserved('a-2', ten, eleven)]);
  });

  it('reserves time that starts exactly when another appointment ends', () => {
    spec.given([reserved('a-1', nine, half)]).when(reserve('a-2', half, ten)).then([reserved('a-2', half, ten)]);
  });

  it.each([
    ['the same time', nine, half],
    ['time that starts inside it', '2026-05-04T09:15:00.000Z', ten],
    ['time that ends inside it', '2026-05-04T08:45:00.000Z', '2026-05-04T09:15:00.000Z'],
    ['time that contains it', '2026-05-04T08:00:00.000Z', ten],
    ['time inside it', '2026-05-04T09:10:00.000Z', '2026-05-04T09:20:00.000Z'],
  ])('refuses %s as another appointment', (_, start, end) => {
    spec.given([reserved('a-1', nine, half)]).when(reserve('a-2', start, end)).thenFails('patient-overlap');
  });

  it('sees the same time written with another offset as overlapping', () => {
    spec.given([reserved('a-1', nine, half)]).when(reserve('a-2', '2026-05-04T11:10:00+02:00', '2026-05-04T11:20:00+02:00')).thenFails('patient-overlap');
  });

  it('changes nothing when the appointment already holds that time', () => {
    spec.given([reserved('a-1', nine, half)]).when(reserve('a-1', '2026-05-04T11:00:00+02:00', half)).then([]);
  });

  it('refuses other time for an appointment that already holds some', () => {
    spec.given([reserved('a-1', nine, half)]).when(reserve('a-1', ten, eleven)).thenFails('already-reserved');
  });

  it('reserves time again once it was released', () => {
    spec.given([reserved('a-1', nine, half), released('a-1', nine, half)]).when(reserve('a-2', nine, half)).then([reserved('a-2', nine, half)]);
  });

  it.each([
    ['ends before it starts', half, nine],
    ['is empty', nine, nine],
  ])('refuses time that %s', (_, start, end) => {
    spec.given([]).when(reserve('a-1', start, end)).thenFails('invalid-time-range');
  });

  it("refuses another patient's reservation on this stream", () => {
    spec
      .given([reserved('a-1', nine, half)])
      .when({ type: 'ReserveTime', data: { patientId: 'patient-2', appointmentId: 'a-2', start: ten, end: eleven } })
      .thenFails('patient-mismatch');
  });
});

describe('ReleaseTime', () => {
  it("gives back the appointment's time", () => {
    spec.given([reserved('a-1', nine, half)]).when(release('a-1')).then([released('a-1', nine, half)]);
  });

  it('gives back the time where it was moved to', () => {
    spec.given([reserved('a-1', nine, half), moved('a-1', [nine, half], [ten, eleven])]).when(release('a-1')).then([released('a-1', ten, eleven)]);
  });

  it('changes nothing when the time was already released', () => {
    spec.given([reserved('a-1', nine, half), released('a-1', nine, half)]).when(release('a-1')).then([]);
  });

  it('changes nothing for an appointment it never saw, nor on an empty agenda', () => {
    spec.given([reserved('a-1', nine, half)]).when(release('a-2')).then([]);
    spec.given([]).when(release('a-1')).then([]);
  });

  it("refuses another patient's release on this stream", () => {
    spec
      .given([reserved('a-1', nine, half)])
      .when({ type: 'ReleaseTime', data: { patientId: 'patient-2', appointmentId: 'a-1' } })
      .thenFails('patient-mismatch');
  });
});

describe('MoveTime', () => {
  it('moves the reservation in one event', () => {
    spec.given([reserved('a-1', nine, half)]).when(move('a-1', ten, eleven)).then([moved('a-1', [nine, half], [ten, eleven])]);
  });

  it('moves into time that overlaps only its own old time', () => {
    const quarterPast = '2026-05-04T09:15:00.000Z';
    const quarterTo = '2026-05-04T09:45:00.000Z';
    spec.given([reserved('a-1', nine, half)]).when(move('a-1', quarterPast, quarterTo)).then([moved('a-1', [nine, half], [quarterPast, quarterTo])]);
  });

  it('frees the old time for other appointments', () => {
    spec.given([reserved('a-1', nine, half), moved('a-1', [nine, half], [ten, eleven])]).when(reserve('a-2', nine, half)).then([reserved('a-2', nine, half)]);
  });

  it('changes nothing when the appointment already holds that time', () => {
    spec.given([reserved('a-1', nine, half)]).when(move('a-1', '2026-05-04T11:00:00+02:00', half)).then([]);
  });

  it("refuses time overlapping another appointment's", () => {
    spec.given([reserved('a-1', nine, half), reserved('a-2', ten, eleven)]).when(move('a-1', '2026-05-04T10:30:00.000Z', eleven)).thenFails('patient-overlap');
  });

  it('needs the appointment to hold time', () => {
    spec.given([reserved('a-1', nine, half)]).when(move('a-2', ten, eleven)).thenFails('not-found');
    spec.given([reserved('a-1', nine, half), released('a-1', nine, half)]).when(move('a-1', ten, eleven)).thenFails('not-found');
    spec.given([]).when(move('a-1', ten, eleven)).thenFails('not-found');
  });

  it('refuses time that ends before it starts', () => {
    spec.given([reserved('a-1', nine, half)]).when(move('a-1', eleven, ten)).thenFails('invalid-time-range');
  });

  it('moves the time from where the mover saw it, written with any offset', () => {
    const from = { ...move('a-1', ten, eleven), data: { ...move('a-1', ten, eleven).data, from: '2026-05-04T11:00:00+02:00' } };
    spec.given([reserved('a-1', nine, half)]).when(from).then([moved('a-1', [nine, half], [ten, eleven])]);
  });

  it('refuses to move the time from where it no longer is: another change of the appointment moved it meanwhile', () => {
    const fromNine = { ...move('a-1', ten, eleven), data: { ...move('a-1', ten, eleven).data, from: nine } };
    spec.given([reserved('a-1', nine, half), moved('a-1', [nine, half], [half, ten])]).when(fromNine).thenFails('time-moved-meanwhile');
  });

  it('changes nothing when the time is already where the mover wanted it, wherever it saw it', () => {
    const fromNine = { ...move('a-1', ten, eleven), data: { ...move('a-1', ten, eleven).data, from: nine } };
    spec.given([reserved('a-1', nine, half), moved('a-1', [nine, half], [ten, eleven])]).when(fromNine).then([]);
  });

  it("refuses another patient's move on this stream", () => {
    spec
      .given([reserved('a-1', nine, half)])
      .when({ type: 'MoveTime', data: { patientId: 'patient-2', appointmentId: 'a-1', newStart: ten, newEnd: eleven } })
      .thenFails('patient-mismatch');
  });
});
