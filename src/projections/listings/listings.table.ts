import type { ColumnType } from 'kysely';

/**
 * One row per listing, overwritten by each listing event (they carry every detail after the
 * change). `search` is a generated `tsvector` over title, description, category and location,
 * never written by the projection. The rating columns are recounted from `listing_reviews`
 * whenever a review of the listing changes: a page of listings then reads no other table.
 */
export type ListingsTable = {
  listing_id: string;
  owner_id: string;
  title: string;
  description: string;
  category: string;
  location: string;
  /**
   * `bigint`, which pg returns as a string: events stored before capacity was bounded carry any
   * safe integer, and one past `integer` stopped the read model for everyone.
   */
  capacity: string;
  time_zone: string;
  /** Minor units of `currency`; `bigint`, which pg returns as a string. */
  price_per_day: string;
  currency: string;
  active: boolean;
  /** When the store recorded the creation: the order of the list, newest first. */
  created_at: Date;
  updated_at: Date;
  version: number;
  search: ColumnType<string, never, never>;
  /** How many visible reviews the listing has, and the sum of their ratings (0 and 0 without any). */
  rating_count: ColumnType<number, never, number>;
  rating_sum: ColumnType<number, never, number>;
};

/** The rating of each review of a listing, and whether moderators hid it: what the rating columns count. */
export type ListingReviewsTable = {
  booking_id: string;
  listing_id: string;
  rating: number;
  hidden: boolean;
  version: number;
};

export type ListingsTables = { listings: ListingsTable; listing_reviews: ListingReviewsTable };

/** A listing as the projection folds listing events into it: every column but the generated and the counted ones. */
export type ListingRow = Omit<ListingsTable, 'search' | 'rating_count' | 'rating_sum'>;

export type ListingReviewRow = ListingReviewsTable;

export const listingColumns = [
  'listing_id',
  'owner_id',
  'title',
  'description',
  'category',
  'location',
  'capacity',
  'time_zone',
  'price_per_day',
  'currency',
  'active',
  'created_at',
  'updated_at',
  'version',
] as const satisfies readonly (keyof ListingRow)[];

export const listingsProjectionName = 'listings';
