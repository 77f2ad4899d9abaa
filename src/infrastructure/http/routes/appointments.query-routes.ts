import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { hasRole } from '../../../domain/shared/actor.js';
import { appointmentFor, appointmentsOf, findAppointment } from '../../../projections/appointments/appointments.queries.js';
import { appointmentsProjectionName } from '../../../projections/appointments/appointments.table.js';
import { requireAuth, requireRoles } from '../plugins/auth.plugin.js';
import { callerOf, consistencyHeaders, cursorScope, idParams, notFound, paged, pageQuery, pageSchema, type QueryRoutesOptions } from '../query-context.js';

const appointmentSchema = z
  .object({
    id: z.string(),
    patientId: z.string(),
    doctorId: z.string(),
    start: z.string(),
    end: z.string(),
    status: z.enum(['scheduled', 'rescheduled', 'completed', 'cancelled', 'noShow']),
    reason: z.string().nullable().describe('Only for the patient and the doctor'),
    notes: z.string().nullable().describe('Clinical notes; only for the patient and the doctor'),
    scheduledBy: z.string(),
    cancelledBy: z.string().nullable(),
    cancellationReason: z.string().nullable().describe('Why it was cancelled (a schedule change says what changed); only for the patient and the doctor'),
    lateCancellation: z.boolean().nullable(),
    scheduledAt: z.string(),
    version: z.number().int(),
  })
  .meta({ id: 'Appointment' });

const appointmentSortKey = z.object({ scheduledAt: z.iso.datetime(), appointmentId: z.string().max(200) });

/** A patient's or doctor's own appointments, and one appointment for its parties and admins. */
export const appointmentQueryRoutes: FastifyPluginAsyncZod<QueryRoutesOptions> = async (app, { db, cursors, consistentWith }) => {
  const tags = ['appointments'];
  const security = [{ bearerAuth: [] }];
  const headers = consistencyHeaders;
  const consistent = consistentWith([appointmentsProjectionName]);

  app.get(
    '/me',
    {
      onRequest: requireRoles('PATIENT', 'DOCTOR'),
      preHandler: consistent,
      schema: {
        tags,
        security,
        summary: 'My appointments (as patient and as doctor), most recently made first',
        description: 'Ordered by `scheduledAt` (when the appointment was made), then id: a reschedule changes `start` but not the order, so paging never repeats or skips an appointment.',
        headers,
        querystring: pageQuery,
        response: { 200: pageSchema(appointmentSchema) },
      },
    },
    async (request) => {
      const actor = callerOf(request);
      const party = { userId: actor.id, asPatient: hasRole(actor, 'PATIENT'), asDoctor: hasRole(actor, 'DOCTOR') };
      const scope = cursorScope('appointments-me', actor.id, { asPatient: party.asPatient, asDoctor: party.asDoctor });
      return paged(cursors, scope, request.query, appointmentSortKey, (page) => appointmentsOf(db, party, page));
    },
  );

  app.get(
    '/:id',
    {
      onRequest: requireAuth,
      preHandler: consistent,
      schema: { tags, security, summary: 'One appointment (notes only for its patient and doctor)', headers, params: idParams, response: { 200: appointmentSchema } },
    },
    async (request) => {
      const actor = callerOf(request);
      const row = await findAppointment(db, request.params.id);
      const view = row && appointmentFor({ id: actor.id, admin: hasRole(actor, 'ADMIN') }, row);
      if (!view) throw notFound(`appointment ${request.params.id}`);
      return view;
    },
  );
};
