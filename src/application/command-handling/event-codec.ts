import type { z } from 'zod';
import { personalFieldPaths, type EventUnionSchema, type PersonalFieldPath } from '../../domain/shared/personal-data.js';
import type { JsonObject, RecordedEvent } from '../ports/event-store.js';

/**
 * Lifts one stored shape of an event type to the next version. Pure; old shapes are never
 * edited. It receives stored data and the event's stored metadata, so it parses before it trusts.
 */
export type Upcaster = {
  readonly type: string;
  readonly fromVersion: number;
  readonly toVersion: number;
  upcast(data: unknown, metadata: JsonObject): unknown;
};

export type DomainEvent = { readonly type: string; readonly data: object };

/** Turns stored events back into an aggregate's typed events, upcasting old versions on the way. */
export type EventCodec<Event extends DomainEvent> = {
  decode(recorded: Pick<RecordedEvent, 'type' | 'data' | 'metadata'>): Event;
  /** The version new events of this type are written with. */
  schemaVersion(type: string): number;
  /** The type names this codec knows, e.g. for subscription filters. */
  readonly eventTypes: readonly string[];
  /** Where the personal data of events of `type` sits, from the schema's `personal()` markers. */
  personalFields(type: string): readonly PersonalFieldPath[];
  /** Whether any event type of this codec carries personal data. */
  readonly hasPersonalData: boolean;
};

export function createEventCodec<Event extends DomainEvent>(
  schema: z.ZodType<Event> & EventUnionSchema,
  upcasters: readonly Upcaster[] = [],
): EventCodec<Event> {
  const personal = personalFieldPaths(schema);
  const steps = new Map(upcasters.map((u) => [`${u.type}@${u.fromVersion}`, u]));
  const current = new Map<string, number>();
  for (const u of upcasters) current.set(u.type, Math.max(current.get(u.type) ?? 1, u.toVersion));
  const eventTypes = schema.options.map((option) => option.shape.type.value);
  return {
    eventTypes,
    personalFields: (type) => personal.get(type) ?? [],
    hasPersonalData: personal.size > 0,
    schemaVersion: (type) => current.get(type) ?? 1,
    decode(recorded) {
      const stored = recorded.metadata.schemaVersion;
      let version = typeof stored === 'number' ? stored : 1;
      let data: unknown = recorded.data;
      for (let step = steps.get(`${recorded.type}@${version}`); step; step = steps.get(`${recorded.type}@${version}`)) {
        data = step.upcast(data, recorded.metadata);
        version = step.toVersion;
      }
      return schema.parse({ type: recorded.type, data });
    },
  };
}
