import { listingCalendarStreamId } from '../../domain/listing-calendar/listing-calendar.decider.js';
import { aggregates } from '../aggregates/aggregates.js';
import type { EventStore } from '../ports/event-store.js';

/**
 * Whether the listing's calendar booked the booking's dates and never gave them back, as its log
 * says. Its state cannot say: it drops a booked range once the stay is over and a later hold moves
 * `openFrom` past it, so a stay that happened looks there like dates never booked. Read back from
 * the calendar's last event to the booking's own hold at most (booked dates are never held again);
 * only a caller that found the dates missing from the state asks, which is rare.
 */
export async function bookedOnCalendar(eventStore: EventStore, listingId: string, bookingId: string): Promise<boolean> {
  const read = await eventStore.readStream(listingCalendarStreamId(listingId), { direction: 'backwards' });
  if (read.status === 'no_stream') return false;
  for await (const recorded of read.events) {
    const event = aggregates.listingCalendar.codec.decode(recorded);
    if (!('bookingId' in event.data) || event.data.bookingId !== bookingId) continue;
    // The last word on this booking's dates: booked, or released (a cancellation) or held since.
    return event.type === 'DatesBooked';
  }
  return false;
}
