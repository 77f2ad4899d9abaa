import type { Kysely } from 'kysely';
import type { Database } from '../read-models.js';
import { toPage, type Page, type PageRequest } from '../shared/page.js';
import type { ReviewRow } from './reviews.table.js';

export type ReviewView = {
  readonly bookingId: string;
  readonly listingId: string;
  readonly authorId: string;
  readonly rating: number;
  readonly comment: string;
  readonly submittedAt: string;
  readonly editedAt: string | null;
};

export type ReviewSortKey = { readonly submittedAt: string; readonly bookingId: string };

function toReviewView(row: ReviewRow): ReviewView {
  return {
    bookingId: row.booking_id,
    listingId: row.listing_id,
    authorId: row.author_id,
    rating: row.rating,
    comment: row.comment,
    submittedAt: row.submitted_at.toISOString(),
    editedAt: row.edited_at?.toISOString() ?? null,
  };
}

/** A listing's visible reviews, newest first. */
export async function reviewsOfListing(db: Kysely<Database>, listingId: string, page: PageRequest<ReviewSortKey>): Promise<Page<ReviewView, ReviewSortKey>> {
  const { after, limit } = page;
  let query = db.selectFrom('rm_reviews.reviews').selectAll().where('listing_id', '=', listingId).where('hidden', '=', false);
  if (after) query = query.where((eb) => eb(eb.refTuple('submitted_at', 'booking_id'), '<', eb.tuple(new Date(after.submittedAt), after.bookingId)));
  const rows = await query.orderBy('submitted_at', 'desc').orderBy('booking_id', 'desc').limit(limit + 1).execute();
  return toPage(rows, limit, toReviewView, (row) => ({ submittedAt: row.submitted_at.toISOString(), bookingId: row.booking_id }));
}
