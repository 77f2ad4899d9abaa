import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { aggregates } from '../../src/application/aggregates/aggregates.js';
import { commandHandler } from '../../src/application/command-handling/handle-command.js';
import { personal, personalFieldPaths } from '../../src/domain/shared/personal-data.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';
import { fakeClock } from '../support/command-side.js';

describe('personal data is declared in the event schemas', () => {
  it('finds every marked field of every aggregate, by event type', () => {
    const marked = Object.fromEntries(
      Object.values(aggregates).flatMap((aggregate) =>
        aggregate.codec.eventTypes.flatMap((type) => {
          const fields = aggregate.codec.personalFields(type).map((path) => path.join('.'));
          return fields.length > 0 ? [[type, fields]] : [];
        }),
      ),
    );
    expect(marked).toEqual({
      UserRegistered: ['email', 'name'],
      RolesGranted: ['reason'],
      RolesRevoked: ['reason'],
      BookingCancelled: ['reason'],
      ReviewSubmitted: ['comment'],
      ReviewEdited: ['comment'],
      ReviewHidden: ['reason'],
      AppointmentScheduled: ['reason'],
      AppointmentCompleted: ['notes'],
      AppointmentCancelled: ['reason'],
    });
  });

  it('names the subject of every aggregate that carries personal data', () => {
    for (const aggregate of Object.values(aggregates)) {
      if (aggregate.codec.hasPersonalData) expect('dataSubject' in aggregate, aggregate.category).toBe(true);
    }
  });

  it('reaches into nested objects and refuses a marker no path can name', () => {
    const nested = z.discriminatedUnion('type', [
      z.object({ type: z.literal('Moved'), data: z.object({ to: z.object({ street: personal(z.string()) }).optional() }) }),
    ]);
    expect(personalFieldPaths(nested).get('Moved')).toEqual([['to', 'street']]);
    const inArray = z.discriminatedUnion('type', [z.object({ type: z.literal('Listed'), data: z.object({ names: z.array(personal(z.string())) }) })]);
    expect(() => personalFieldPaths(inArray)).toThrow(/names/);
  });

  it('will not run a handler that could store personal data in clear', () => {
    expect(() => commandHandler(aggregates.appointment, { eventStore: new MemoryEventStore(), clock: fakeClock('2030-01-01T00:00:00Z') })).toThrow(/personal/);
  });
});
