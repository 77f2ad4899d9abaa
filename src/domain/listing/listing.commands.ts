import { z } from 'zod';
import { actorSchema } from '../shared/actor.js';
import { newListingDetailsSchema, listingPriceSchema } from './listing.events.js';

/** The owner is the actor, who must hold the OWNER role; `timeZone` defaults to `UTC`. */
export const createListingSchema = z.object({
  type: z.literal('CreateListing'),
  data: z.object({
    listingId: z.string().min(1),
    actor: actorSchema,
    /** Whose listing it is; the actor's own when left out. Only an admin creates one for someone else. */
    ownerId: z.string().min(1).optional(),
    ...newListingDetailsSchema.shape,
    timeZone: newListingDetailsSchema.shape.timeZone.optional(),
    ...listingPriceSchema.shape,
  }),
});

/** Every field but the id and actor is optional: only what is given changes. */
export const updateListingSchema = z.object({
  type: z.literal('UpdateListing'),
  data: z.object({
    listingId: z.string().min(1),
    actor: actorSchema,
    ...newListingDetailsSchema.partial().shape,
    ...listingPriceSchema.partial().shape,
  }),
});

export const deactivateListingSchema = z.object({
  type: z.literal('DeactivateListing'),
  data: z.object({ listingId: z.string().min(1), actor: actorSchema }),
});

export const reactivateListingSchema = z.object({
  type: z.literal('ReactivateListing'),
  data: z.object({ listingId: z.string().min(1), actor: actorSchema }),
});

export const listingCommandSchema = z.discriminatedUnion('type', [
  createListingSchema,
  updateListingSchema,
  deactivateListingSchema,
  reactivateListingSchema,
]);
export type ListingCommand = z.infer<typeof listingCommandSchema>;
export type CreateListing = z.infer<typeof createListingSchema>;
export type UpdateListing = z.infer<typeof updateListingSchema>;
export type DeactivateListing = z.infer<typeof deactivateListingSchema>;
export type ReactivateListing = z.infer<typeof reactivateListingSchema>;
