import { z } from 'zod';
import type { Actor } from '../domain/shared/actor.js';
import type { RecordedEvent } from './ports/event-store.js';
import { sealedFieldsSchema } from './privacy/personal-data-vault.js';

export { actorSchema, roleSchema, type Actor, type Role } from '../domain/shared/actor.js';

/** Who asked, on whose behalf, as part of which request: attached to every appended event. */
export const eventMetadataSchema = z.object({
  /** User id of the person (or `system:<process>` for process managers). */
  actorId: z.string().min(1),
  actorRoles: z.array(z.string()),
  /** Shared by everything one original request caused, across aggregates and processes. */
  correlationId: z.string().min(1),
  /** The id of the command or event that directly caused this event. */
  causationId: z.string().min(1),
  requestId: z.string().min(1),
  occurredAt: z.iso.datetime({ offset: true }),
  /** Version of the event's data shape; upcasters lift old versions on read. */
  schemaVersion: z.number().int().positive(),
  ip: z.string().optional(),
  userAgent: z.string().optional(),
  /** Whose data key sealed the event's personal fields, and which fields (crypto-shredding). */
  personalData: sealedFieldsSchema.optional(),
});
export type EventMetadata = z.infer<typeof eventMetadataSchema>;

/**
 * The time an event counts as having happened (time travel, time ranges, grace periods, the
 * cancellation policy): `occurredAt` from its metadata (the service's clock when it decided), or
 * the store's `recordedAt` for an event without it.
 */
export function occurredAt(event: RecordedEvent): Date {
  const stated = event.metadata.occurredAt;
  const parsed = typeof stated === 'string' ? new Date(stated) : undefined;
  return parsed && !Number.isNaN(parsed.getTime()) ? parsed : event.recordedAt;
}

/** Everything about a command's origin that ends up in its events' metadata. */
export type CommandContext = {
  /** A person, or a process manager acting as `system:<name>` with no roles. */
  readonly actor: Actor;
  readonly requestId: string;
  readonly correlationId: string;
  readonly causationId: string;
  readonly ip?: string;
  readonly userAgent?: string;
};
