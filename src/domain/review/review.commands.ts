import { z } from 'zod';
import { actorSchema } from '../shared/actor.js';
import { instantSchema } from '../shared/calendar-date.js';
import { notPrintable, printableLines } from '../shared/printable-text.js';
import { bookingStatusSchema } from '../booking/booking.status.js';
import { commentSchema, ratingSchema } from './review.events.js';

/**
 * A comment as a command or request may set it: lines a terminal or a renderer shows as written.
 * Blank is allowed, as for a listing's description: the rating is the review. The events keep
 * the looser rule they were stored under, so older comments still decode.
 */
export const newCommentSchema = commentSchema.regex(printableLines, notPrintable);

/** The booking as the application read it: a review is one per booking, so the booking id is the review's id. */
export const bookingFactsSchema = z.object({
  consumerId: z.string().min(1),
  listingId: z.string().min(1),
  status: bookingStatusSchema,
});
export type BookingFacts = z.infer<typeof bookingFactsSchema>;

export const submitReviewSchema = z.object({
  type: z.literal('SubmitReview'),
  data: z.object({
    bookingId: z.string().min(1),
    /** The listing being reviewed (from the path); must be the booking's. */
    listingId: z.string().min(1),
    actor: actorSchema,
    booking: bookingFactsSchema,
    rating: ratingSchema,
    comment: newCommentSchema,
    now: instantSchema,
  }),
});

/** Only what is given changes. */
export const editReviewSchema = z.object({
  type: z.literal('EditReview'),
  data: z.object({
    bookingId: z.string().min(1),
    actor: actorSchema,
    rating: ratingSchema.optional(),
    comment: newCommentSchema.optional(),
    now: instantSchema,
  }),
});

export const hideReviewSchema = z.object({
  type: z.literal('HideReview'),
  data: z.object({ bookingId: z.string().min(1), actor: actorSchema, reason: z.string().min(1).max(1000) }),
});

export const reviewCommandSchema = z.discriminatedUnion('type', [submitReviewSchema, editReviewSchema, hideReviewSchema]);
export type ReviewCommand = z.infer<typeof reviewCommandSchema>;
export type SubmitReview = z.infer<typeof submitReviewSchema>;
export type EditReview = z.infer<typeof editReviewSchema>;
export type HideReview = z.infer<typeof hideReviewSchema>;
