/** One review per booking (the review stream is named after the booking). Hidden ones stay, unlisted. */
export type ReviewsTable = {
  booking_id: string;
  listing_id: string;
  author_id: string;
  rating: number;
  comment: string;
  /** When the consumer submitted it: the order of the list, newest first. */
  submitted_at: Date;
  edited_at: Date | null;
  hidden: boolean;
  version: number;
};

export type ReviewsTables = { reviews: ReviewsTable };

export type ReviewRow = ReviewsTable;

export const reviewsProjectionName = 'reviews';
