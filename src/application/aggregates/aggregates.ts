import { appointmentDecider, isMade, type AppointmentState } from '../../domain/appointment/appointment.decider.js';
import { appointmentEventSchema } from '../../domain/appointment/appointment.events.js';
import { bookingDecider, isRecorded, type BookingState } from '../../domain/booking/booking.decider.js';
import { bookingEventSchema } from '../../domain/booking/booking.events.js';
import { bookingUpcasters } from '../../domain/booking/booking.upcasters.js';
import { doctorScheduleDecider } from '../../domain/doctor-schedule/doctor-schedule.decider.js';
import { doctorScheduleEventSchema } from '../../domain/doctor-schedule/doctor-schedule.events.js';
import { doctorScheduleUpcasters } from '../../domain/doctor-schedule/doctor-schedule.upcasters.js';
import { listingCalendarDecider } from '../../domain/listing-calendar/listing-calendar.decider.js';
import { listingCalendarEventSchema } from '../../domain/listing-calendar/listing-calendar.events.js';
import { listingDecider } from '../../domain/listing/listing.decider.js';
import { listingEventSchema } from '../../domain/listing/listing.events.js';
import { listingUpcasters } from '../../domain/listing/listing.upcasters.js';
import { patientAgendaDecider } from '../../domain/patient-agenda/patient-agenda.decider.js';
import { patientAgendaEventSchema } from '../../domain/patient-agenda/patient-agenda.events.js';
import { paymentDecider } from '../../domain/payment/payment.decider.js';
import { paymentEventSchema } from '../../domain/payment/payment.events.js';
import { reviewDecider, type ReviewState } from '../../domain/review/review.decider.js';
import { reviewEventSchema } from '../../domain/review/review.events.js';
import { userDecider, type UserState } from '../../domain/user/user.decider.js';
import { userEventSchema } from '../../domain/user/user.events.js';
import { createEventCodec } from '../command-handling/event-codec.js';

/**
 * Every aggregate the command side runs: its decider and how its stored events are read back
 * (schema, versions, upcasters). The stream category is the prefix of its stream ids.
 */
export const aggregates = {
  user: {
    category: 'user',
    decider: userDecider,
    codec: createEventCodec(userEventSchema),
    dataSubject: (state: UserState) => (state.status === 'registered' ? state.userId : undefined),
    // Status and roles, never the name or email: erasing a person whose key was lost reads them.
    foldsSealed: true,
  },
  listing: { category: 'listing', decider: listingDecider, codec: createEventCodec(listingEventSchema, listingUpcasters) },
  listingCalendar: {
    category: 'listingCalendar',
    decider: listingCalendarDecider,
    codec: createEventCodec(listingCalendarEventSchema),
  },
  booking: {
    category: 'booking',
    decider: bookingDecider,
    codec: createEventCodec(bookingEventSchema, bookingUpcasters),
    // Whoever writes a reason on a booking writes it about the consumer's booking.
    dataSubject: (state: BookingState) => (isRecorded(state) ? state.booking.consumerId : undefined),
  },
  payment: { category: 'payment', decider: paymentDecider, codec: createEventCodec(paymentEventSchema) },
  review: {
    category: 'review',
    decider: reviewDecider,
    codec: createEventCodec(reviewEventSchema),
    dataSubject: (state: ReviewState) => (state.status === 'none' ? undefined : state.review.authorId),
  },
  doctorSchedule: {
    category: 'doctorSchedule',
    decider: doctorScheduleDecider,
    codec: createEventCodec(doctorScheduleEventSchema, doctorScheduleUpcasters),
  },
  patientAgenda: { category: 'patientAgenda', decider: patientAgendaDecider, codec: createEventCodec(patientAgendaEventSchema) },
  appointment: {
    category: 'appointment',
    decider: appointmentDecider,
    codec: createEventCodec(appointmentEventSchema),
    // Reason for visit and clinical notes are the patient's health data, whoever wrote them.
    dataSubject: (state: AppointmentState) => (isMade(state) ? state.patientId : undefined),
  },
} as const;
