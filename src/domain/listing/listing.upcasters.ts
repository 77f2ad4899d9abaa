import { z } from 'zod';
import type { EventUpcaster } from '../shared/upcaster.js';
import type { ListingDeactivatedData, ListingEvent } from './listing.events.js';

/**
 * `ListingDeactivated` as version 1 wrote it: `moderated` only once moderation was recorded;
 * before that an admin's deactivation of someone else's listing looked like its owner's own.
 * Frozen: stored events of this shape exist and are never rewritten.
 */
export const listingDeactivatedV1Schema = z.object({ listingId: z.string().min(1), moderated: z.literal(true).optional() });
export type ListingDeactivatedV1 = z.infer<typeof listingDeactivatedV1Schema>;

/** The part of an event's metadata that says who acted (the application's `EventMetadata`). */
const actingSchema = z.object({ actorId: z.string().min(1), actorRoles: z.array(z.string()) });

/**
 * Adds who deactivated it, from the metadata, so that `evolve` can tell an admin's moderation
 * stored without the flag. Metadata that names no actor (an event appended from outside the
 * service) leaves it as it read before: the owner's own.
 */
export function upcastListingDeactivatedV1(v1: ListingDeactivatedV1, metadata: Readonly<Record<string, unknown>>): ListingDeactivatedData {
  const acting = actingSchema.safeParse(metadata);
  if (!acting.success) return v1;
  return { ...v1, deactivatedBy: { id: acting.data.actorId, admin: acting.data.actorRoles.includes('ADMIN') } };
}

export const listingUpcasters: readonly EventUpcaster<ListingEvent>[] = [
  {
    type: 'ListingDeactivated',
    fromVersion: 1,
    toVersion: 2,
    upcast: (data: unknown, metadata): ListingDeactivatedData => upcastListingDeactivatedV1(listingDeactivatedV1Schema.parse(data), metadata),
  },
];
