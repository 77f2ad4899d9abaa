import { z } from 'zod';
import { currencySchema } from '../shared/money.js';
import { notPrintable, printable, printableLines } from '../shared/printable-text.js';
import { timeZoneSchema } from '../shared/time-zone.js';

/** What a listing says about itself; listing text is published, so none of it is personal data. */
export const listingDetailsSchema = z.object({
  title: z.string().min(1).max(200),
  description: z.string().max(5000),
  category: z.string().min(1).max(100),
  location: z.string().min(1).max(200),
  capacity: z.number().int().positive(),
  /** IANA zone: decides which calendar day "today" is for this listing. */
  timeZone: timeZoneSchema,
});
export type ListingDetails = z.infer<typeof listingDetailsSchema>;

/**
 * The most guests or units a listing may say it takes. Commands and requests are held to it; the
 * events keep the unbounded rule they were stored under, so that what was stored stays readable.
 * (A capacity past PostgreSQL's `integer` stopped the listings read model for everyone.)
 */
export const maxCapacity = 1_000_000;

/**
 * Listing text as a command or request may set it: trimmed, not blank, and without control
 * characters, as the query API's filters are, so that a search can be written for any of it.
 */
const searchableText = (max: number) => z.string().trim().min(1).max(max).regex(printable, notPrintable);

/** The details as a command or request may set them; the events keep the looser rules they were stored under. */
export const newListingDetailsSchema = listingDetailsSchema.extend({
  title: searchableText(200),
  /** Several lines, and may be blank; but no control characters either, lest a reader's terminal obey them. */
  description: listingDetailsSchema.shape.description.regex(printableLines, notPrintable),
  category: searchableText(100),
  location: searchableText(200),
  capacity: listingDetailsSchema.shape.capacity.max(maxCapacity),
});

/** Price per day (night) in minor units of `currency`. */
export const listingPriceSchema = z.object({
  pricePerDay: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  currency: currencySchema,
});
export type ListingPrice = z.infer<typeof listingPriceSchema>;

export const listingCreatedSchema = z.object({
  type: z.literal('ListingCreated'),
  data: z.object({
    listingId: z.string().min(1),
    ownerId: z.string().min(1),
    ...listingDetailsSchema.shape,
    ...listingPriceSchema.shape,
  }),
});

/** Carries every detail after the change, so a read model just overwrites its row. */
export const listingDetailsUpdatedSchema = z.object({
  type: z.literal('ListingDetailsUpdated'),
  data: z.object({ listingId: z.string().min(1), ...listingDetailsSchema.shape }),
});

/** Apart from the details because it changes what bookings cost; applies to bookings requested afterwards. */
export const listingPriceChangedSchema = z.object({
  type: z.literal('ListingPriceChanged'),
  data: z.object({ listingId: z.string().min(1), ...listingPriceSchema.shape }),
});

/**
 * Version 2 (see listing.upcasters.ts for version 1).
 *
 * `moderated`: an admin other than the owner deactivated it, and only an admin may reactivate it.
 * Recorded again on a listing its owner had deactivated, so that the owner cannot dodge
 * moderation by deactivating first.
 *
 * `deactivatedBy`: never written; the upcaster lifts it from a version 1 event's metadata, since
 * version 1 stored an admin's moderation without the flag until the flag existed. Whether that
 * was moderation depends on the owner, who is in `ListingCreated`, so `evolve` tells.
 *
 * With neither: the owner's own deactivation.
 */
export const listingDeactivatedSchema = z.object({
  type: z.literal('ListingDeactivated'),
  data: z.object({
    listingId: z.string().min(1),
    moderated: z.literal(true).optional(),
    deactivatedBy: z.object({ id: z.string().min(1), admin: z.boolean() }).optional(),
  }),
});

export const listingReactivatedSchema = z.object({
  type: z.literal('ListingReactivated'),
  data: z.object({ listingId: z.string().min(1) }),
});

export const listingEventSchema = z.discriminatedUnion('type', [
  listingCreatedSchema,
  listingDetailsUpdatedSchema,
  listingPriceChangedSchema,
  listingDeactivatedSchema,
  listingReactivatedSchema,
]);
export type ListingEvent = z.infer<typeof listingEventSchema>;
export type ListingCreated = z.infer<typeof listingCreatedSchema>;
export type ListingDetailsUpdated = z.infer<typeof listingDetailsUpdatedSchema>;
export type ListingPriceChanged = z.infer<typeof listingPriceChangedSchema>;
export type ListingDeactivated = z.infer<typeof listingDeactivatedSchema>;
export type ListingDeactivatedData = ListingDeactivated['data'];
export type ListingReactivated = z.infer<typeof listingReactivatedSchema>;
