import { z } from 'zod';

/** A booking's lifecycle states, for other aggregates' commands that carry facts about a booking. */
export const bookingStatusSchema = z.enum(['requested', 'paid', 'confirmed', 'completed', 'cancelled', 'expired']);
export type BookingStatus = z.infer<typeof bookingStatusSchema>;
