import type { ColumnType } from 'kysely';

/**
 * One row per listing, overwritten by each listing event (they carry every detail after the
 * change). `search` is a generated `tsvector` over title, description, category and location,
 * never written by the projection.
 */
export type ListingsTable = {
  listing_id: string;
  owner_id: string;
  title: string;
  description: string;
  category: string;
  location: string;
  capacity: number;
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
};

export type ListingsTables = { listings: ListingsTable };

/** A listing as the projection reads and writes it: every column but the generated one. */
export type ListingRow = Omit<ListingsTable, 'search'>;

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
