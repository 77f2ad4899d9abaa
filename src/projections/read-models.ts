import { appointmentsProjection } from './appointments/appointments.projection.js';
import { auditIndexProjection } from './audit-index/audit-index.projection.js';
import type { AppointmentsTables } from './appointments/appointments.table.js';
import { bookingsProjection } from './bookings/bookings.projection.js';
import type { BookingsTables } from './bookings/bookings.table.js';
import { doctorsProjection } from './doctors/doctors.projection.js';
import type { DoctorsTables } from './doctors/doctors.table.js';
import { listingAvailabilityProjection } from './listing-availability/listing-availability.projection.js';
import type { ListingAvailabilityTables } from './listing-availability/listing-availability.table.js';
import { listingsProjection } from './listings/listings.projection.js';
import type { ListingsTables } from './listings/listings.table.js';
import { paymentsProjection } from './payments/payments.projection.js';
import type { PaymentsTables } from './payments/payments.table.js';
import { reviewsProjection } from './reviews/reviews.projection.js';
import type { ReviewsTables } from './reviews/reviews.table.js';
import type { Projection } from './runtime/projection.js';
import { usersProjection } from './users/users.projection.js';
import type { UsersTables } from './users/users.table.js';

/**
 * A read model's tables as the query side names them: through its read schema `rm_<name>`
 * (`readSchema(name)`), whose views always show the active generation. Qualified names let one
 * query join read models (a listing's rating comes from the reviews read model).
 */
type InSchema<Schema extends string, Tables> = { [Table in keyof Tables & string as `${Schema}.${Table}`]: Tables[Table] };

/** Every read model's tables, for the query side's kysely instance. */
export type Database = InSchema<'rm_bookings', BookingsTables> &
  InSchema<'rm_listings', ListingsTables> &
  InSchema<'rm_listing_availability', ListingAvailabilityTables> &
  InSchema<'rm_reviews', ReviewsTables> &
  InSchema<'rm_payments', PaymentsTables> &
  InSchema<'rm_users', UsersTables> &
  InSchema<'rm_doctors', DoctorsTables> &
  InSchema<'rm_appointments', AppointmentsTables>;

/** Every read model the projectors build, in no particular order: each runs on its own. */
export const readModelProjections: readonly Projection[] = [
  bookingsProjection,
  listingsProjection,
  listingAvailabilityProjection,
  reviewsProjection,
  paymentsProjection,
  usersProjection,
  doctorsProjection,
  appointmentsProjection,
  auditIndexProjection,
];
