import { z } from 'zod';
import { instantSchema } from '../shared/calendar-date.js';
import { personal } from '../shared/personal-data.js';

export const maxCommentCharacters = 2000;

/** Counted in characters as people see them (code points), so an emoji counts once. */
export function characterCount(text: string): number {
  return [...text].length;
}

export const ratingSchema = z.number().int().min(1).max(5);
export const commentSchema = z
  .string()
  .refine((text) => characterCount(text) <= maxCommentCharacters, `at most ${maxCommentCharacters} characters`);

export const reviewSubmittedSchema = z.object({
  type: z.literal('ReviewSubmitted'),
  data: z.object({
    bookingId: z.string().min(1),
    listingId: z.string().min(1),
    authorId: z.string().min(1),
    rating: ratingSchema,
    comment: personal(commentSchema),
    /** The edit window runs from here. */
    submittedAt: instantSchema,
  }),
});

/** Rating and comment as they are after the edit. */
export const reviewEditedSchema = z.object({
  type: z.literal('ReviewEdited'),
  data: z.object({ bookingId: z.string().min(1), listingId: z.string().min(1), rating: ratingSchema, comment: personal(commentSchema) }),
});

/** The review stays in the history; read models stop showing it. */
export const reviewHiddenSchema = z.object({
  type: z.literal('ReviewHidden'),
  data: z.object({
    bookingId: z.string().min(1),
    listingId: z.string().min(1),
    hiddenById: z.string().min(1),
    reason: personal(z.string().min(1).max(1000)),
  }),
});

export const reviewEventSchema = z.discriminatedUnion('type', [reviewSubmittedSchema, reviewEditedSchema, reviewHiddenSchema]);
export type ReviewEvent = z.infer<typeof reviewEventSchema>;
export type ReviewSubmitted = z.infer<typeof reviewSubmittedSchema>;
export type ReviewEdited = z.infer<typeof reviewEditedSchema>;
export type ReviewHidden = z.infer<typeof reviewHiddenSchema>;
