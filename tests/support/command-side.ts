import { isMade } from '../../src/domain/appointment/appointment.decider.js';
import { randomUUID } from 'node:crypto';
import { createCommandHandlers, type CommandSide } from '../../src/application/command-handlers.js';
import type { CommandOptions } from '../../src/application/command-handling/handle-command.js';
import type { EventStore, Position, RecordedEvent } from '../../src/application/ports/event-store.js';
import type { SweepingProcess } from '../../src/application/process-managers/sweeping-process.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { slotOf } from '../../src/domain/doctor-schedule/doctor-schedule.decider.js';
import { reservationOf } from '../../src/domain/patient-agenda/patient-agenda.decider.js';
import { PersonalDataVault } from '../../src/application/privacy/personal-data-vault.js';
import { MemorySubjectKeyStore } from '../../src/infrastructure/privacy/memory-subject-key-store.js';
import type { Actor } from '../../src/domain/shared/actor.js';
import type { WeeklySchedule } from '../../src/domain/doctor-schedule/weekly-schedule.js';

/** A clock that stands still until a test moves it. */
export function fakeClock(start: string) {
  let current = new Date(start);
  return {
    now: () => current,
    advance(ms: number) {
      current = new Date(current.getTime() + ms);
    },
  };
}

/**
 * The data keys of every side made without a vault: sides stand for processes on one database,
 * which share their keys (each with its own vault, its own cache of them). A side whose keys were
 * its own would find what another sealed unreadable, its key missing.
 */
const sharedKeys = new MemorySubjectKeyStore();

/** The command side on `eventStore`; pass the vault readers of the same events use (`pgVault`). */
export function createTestSide(
  eventStore: EventStore,
  clock: { now(): Date },
  holdMinutes = 15,
  personalData: PersonalDataVault = new PersonalDataVault(sharedKeys),
): CommandSide {
  return { handlers: createCommandHandlers({ eventStore, clock, personalData }), clock, policy: { holdMinutes } };
}

/** A fresh command from `actor`, as the HTTP edge would build it. */
export function as(actor: Actor, commandId: string = randomUUID()): CommandOptions {
  return { commandId, context: { actor, requestId: `req-${commandId}`, correlationId: `corr-${commandId}`, causationId: `req-${commandId}` } };
}

export const owner: Actor = { id: 'owner-1', roles: ['OWNER'] };
export const consumer: Actor = { id: 'consumer-1', roles: ['CONSUMER'] };
export const otherConsumer: Actor = { id: 'consumer-2', roles: ['CONSUMER'] };
export const admin: Actor = { id: 'admin-1', roles: ['ADMIN'] };
export const patient: Actor = { id: 'patient-1', roles: ['PATIENT'] };
export const doctor: Actor = { id: 'doctor-1', roles: ['DOCTOR'] };
export const otherDoctor: Actor = { id: 'doctor-2', roles: ['DOCTOR'] };

export const listingInput = {
  title: 'Loft by the river',
  description: 'Bright, quiet, two bedrooms',
  category: 'venue',
  location: 'Lyon',
  capacity: 4,
  pricePerDay: 12_000,
  currency: 'EUR',
};

const mornings = [{ from: '09:00', to: '12:00' }];
export const everyMorning: WeeklySchedule = {
  timeZone: 'UTC',
  slotMinutes: 30,
  weeklyHours: { mon: mornings, tue: mornings, wed: mornings, thu: mornings, fri: mornings, sat: mornings, sun: mornings },
  daysOff: [],
};

export async function streamEvents(store: EventStore, streamId: string): Promise<RecordedEvent[]> {
  const read = await store.readStream(streamId);
  const events: RecordedEvent[] = [];
  if (read.status === 'found') for await (const event of read.events) events.push(event);
  return events;
}

/** Where an appointment, its doctor's slot and its patient's time each say it is. */
export async function whereIsAppointment(side: CommandSide, appointmentId: string, { doctorId, patientId }: { doctorId: string; patientId: string }) {
  const appointment = await side.handlers.appointment.read(`appointment-${appointmentId}`);
  const schedule = await side.handlers.doctorSchedule.read(`doctorSchedule-${doctorId}`);
  const agenda = await side.handlers.patientAgenda.read(`patientAgenda-${patientId}`);
  return {
    appointment: isMade(appointment.state) ? appointment.state.start : undefined,
    slot: slotOf(schedule.state, appointmentId)?.start,
    time: reservationOf(agenda.state, appointmentId)?.start,
  };
}

/** The id of every event in `store`, in log order. */
export async function everyEventId(store: EventStore): Promise<string[]> {
  const ids: string[] = [];
  for await (const event of store.readAll()) ids.push(event.id);
  return ids;
}

/**
 * The turns of `process` following `store` from the start, as `runSweepLoop` runs it: each turn
 * hands it what the log gained since the last one (everything, the first time), then has it sweep.
 */
export function followAndSweep<Swept>(store: EventStore, process: Pick<SweepingProcess, 'observe'> & { sweep(): Promise<Swept> }): () => Promise<Swept> {
  let after: Position | undefined;
  return async () => {
    for await (const event of store.readAll(after ? { after } : {})) {
      process.observe(event);
      after = event.position;
    }
    return process.sweep();
  };
}

export async function eventTypes(store: EventStore, streamId: string): Promise<string[]> {
  return (await streamEvents(store, streamId)).map((event) => event.type);
}

/**
 * An in-memory store whose next append to a stream `interrupt` names fails, as a crash between
 * two steps of a command would leave things; or waits for `pause`'s promise, to interleave
 * concurrent commands step by step. Each applies once.
 */
export class InterruptibleStore extends MemoryEventStore {
  private failNext: ((streamId: string) => boolean) | undefined;
  private pauseNext: { readonly on: (streamId: string) => boolean; readonly until: Promise<unknown>; readonly reached: () => void } | undefined;

  interrupt(on: (streamId: string) => boolean): void {
    this.failNext = on;
  }

  /** Resolves once an append has reached the pause. */
  pause(on: (streamId: string) => boolean, until: Promise<unknown>): Promise<void> {
    return new Promise((reached) => (this.pauseNext = { on, until, reached }));
  }

  override async appendToStream(...args: Parameters<MemoryEventStore['appendToStream']>): ReturnType<MemoryEventStore['appendToStream']> {
    const [streamId] = args;
    if (this.failNext?.(streamId)) {
      this.failNext = undefined;
      throw new Error(`the process died before appending to ${streamId}`);
    }
    const pause = this.pauseNext;
    if (pause?.on(streamId)) {
      this.pauseNext = undefined;
      pause.reached();
      await pause.until;
    }
    return super.appendToStream(...args);
  }
}
