import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  bookAppointment,
  cancelAppointment,
  completeAppointment,
  markNoShow,
  rescheduleAppointment,
} from '../../../application/appointments/appointment.use-cases.js';
import type { CommandSide } from '../../../application/command-handlers.js';
import { setSchedule } from '../../../application/schedules/schedule.use-cases.js';
import { specialtySchema } from '../../../domain/doctor-schedule/specialty.js';
import { weeklyScheduleSchema } from '../../../domain/doctor-schedule/weekly-schedule.js';
import { requestInstantSchema } from '../../../domain/shared/calendar-date.js';
import { commandOptions } from '../command-context.js';
import { commandResultSchema, emptyBodySchema, ifMatchHeaderSchema, noIfMatchHeaderSchema, sendCommandResult } from '../command-result.js';
import { requireAuth, requireRoles } from '../plugins/auth.plugin.js';
import { reasonBody } from './bookings.routes.js';

const text = z.string().trim().min(1).max(5000);
const bookBody = z.object({ doctorId: z.uuid(), start: requestInstantSchema.describe('ISO 8601 with offset'), reason: text }).strict().meta({ id: 'BookAppointmentRequest' });
const rescheduleBody = z.object({ start: requestInstantSchema }).strict().meta({ id: 'RescheduleRequest' });
const completeBody = z.object({ notes: text }).strict().meta({ id: 'CompleteAppointmentRequest' });
const scheduleBody = weeklyScheduleSchema
  .safeExtend({
    specialty: specialtySchema.nullable().optional().describe('What the doctor practises, published with the hours; left out or null: none'),
    acknowledgedAffected: z
      .array(z.uuid())
      .optional()
      .describe('Booked appointments the new hours leave outside (listed by the 409 schedule-conflict): the doctor cancels them, saying what changed'),
  })
  .meta({ id: 'DoctorScheduleRequest' });

const params = z.object({ id: z.uuid() });
const security = [{ bearerAuth: [] }];
const result = { 200: commandResultSchema };

/** Doctor schedules and appointments (API.md, command API). */
export const appointmentRoutes: FastifyPluginAsyncZod<{ readonly side: CommandSide }> = async (app, { side }) => {
  app.put(
    '/v1/doctors/:id/schedule',
    {
      onRequest: requireRoles('DOCTOR', 'ADMIN'),
      schema: { tags: ['doctors'], security, summary: 'Set weekly hours, slot length, time zone, days off', params, headers: ifMatchHeaderSchema, body: scheduleBody, response: result },
    },
    async (request, reply) => sendCommandResult(reply, await setSchedule(side, request.params.id, request.body, commandOptions(request)), 200),
  );

  const tags = ['appointments'];
  app.post(
    '/v1/appointments',
    { onRequest: requireRoles('PATIENT'), schema: { tags, security, summary: "Book a doctor's free slot", headers: noIfMatchHeaderSchema, body: bookBody, response: { 201: commandResultSchema } } },
    async (request, reply) => sendCommandResult(reply, await bookAppointment(side, request.body, commandOptions(request)), 201),
  );

  app.post(
    '/v1/appointments/:id/reschedule',
    { onRequest: requireAuth, schema: { tags, security, summary: 'Move to another free slot', params, headers: ifMatchHeaderSchema, body: rescheduleBody, response: result } },
    async (request, reply) => sendCommandResult(reply, await rescheduleAppointment(side, request.params.id, request.body, commandOptions(request)), 200),
  );

  app.post(
    '/v1/appointments/:id/cancel',
    { onRequest: requireAuth, schema: { tags, security, summary: 'Cancel with a reason', params, headers: ifMatchHeaderSchema, body: reasonBody, response: result } },
    async (request, reply) => sendCommandResult(reply, await cancelAppointment(side, request.params.id, request.body, commandOptions(request)), 200),
  );

  app.post(
    '/v1/appointments/:id/complete',
    { onRequest: requireRoles('DOCTOR'), schema: { tags, security, summary: 'Mark as held, with notes', params, headers: ifMatchHeaderSchema, body: completeBody, response: result } },
    async (request, reply) => sendCommandResult(reply, await completeAppointment(side, request.params.id, request.body, commandOptions(request)), 200),
  );

  app.post(
    '/v1/appointments/:id/no-show',
    { onRequest: requireRoles('DOCTOR'), schema: { tags, security, summary: 'Mark as missed', params, headers: ifMatchHeaderSchema, body: emptyBodySchema, response: result } },
    async (request, reply) => sendCommandResult(reply, await markNoShow(side, request.params.id, commandOptions(request)), 200),
  );
};
