import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requestInstantSchema } from '../../../domain/shared/calendar-date.js';
import { doctorsProjectionName } from '../../../projections/doctors/doctors.table.js';
import { freeSlotsOf, listDoctors, sortKeyNameLength } from '../../../projections/doctors/doctors.queries.js';
import { usersProjectionName } from '../../../projections/users/users.table.js';
import { optionalAuth } from '../plugins/auth.plugin.js';
import { consistencyHeaders, cursorScope, idParams, notFound, paged, pageQuery, pageSchema, textParam, type QueryRoutesOptions } from '../query-context.js';

/** Free slots are computed per request: a month at most at once. */
const maxRangeMs = 31 * 86_400_000;

const doctorSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    specialty: z.string().nullable().describe('As published with the schedule; null if none was'),
    schedule: z.object({ timeZone: z.string(), slotMinutes: z.number().int() }).nullable(),
  })
  .meta({ id: 'Doctor' });

const slotSchema = z.object({ start: z.string(), end: z.string() }).meta({ id: 'Slot' });

const slotsQuery = pageQuery
  .extend({
    from: requestInstantSchema.describe('ISO 8601 instant with offset'),
    to: requestInstantSchema,
  })
  .refine(({ from, to }) => Date.parse(from) < Date.parse(to) && Date.parse(to) - Date.parse(from) <= maxRangeMs, {
    message: 'from must be before to, at most 31 days apart',
    path: ['to'],
  });

const doctorsQuery = pageQuery.extend({ specialty: textParam(100).optional().describe('Only doctors of this specialty, any case') });

// A code point of the name is at most two UTF-16 units.
const doctorSortKey = z.object({ name: z.string().max(2 * sortKeyNameLength), doctorId: z.string().max(200) });
const slotSortKey = z.object({ start: z.iso.datetime() });

/** Public reads: doctors, and a doctor's free slots; a token, if sent, must be valid (API.md). */
export const doctorQueryRoutes: FastifyPluginAsyncZod<QueryRoutesOptions> = async (app, { db, clock, cursors, consistentWith, cachedRead }) => {
  const tags = ['doctors'];
  const headers = consistencyHeaders;

  app.get(
    '/',
    {
      onRequest: optionalAuth,
      preHandler: cachedRead([usersProjectionName, doctorsProjectionName], { sameForEveryone: true }),
      schema: { tags, summary: 'Doctors, by name', headers, querystring: doctorsQuery, response: { 200: pageSchema(doctorSchema) } },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      return paged(cursors, cursorScope('doctors', undefined, filter), { limit, cursor }, doctorSortKey, (page) => listDoctors(db, filter, page));
    },
  );

  app.get(
    '/:id/slots',
    {
      onRequest: optionalAuth,
      preHandler: consistentWith([doctorsProjectionName]),
      schema: { tags, summary: 'Free slots in [from, to), in time order', description: 'None in the past, and none more than 365 days ahead: bookings reach no further.', headers, params: idParams, querystring: slotsQuery, response: { 200: pageSchema(slotSchema) } },
    },
    async (request) => {
      const { limit, cursor, from, to } = request.query;
      const { id } = request.params;
      const range = { from: new Date(from), to: new Date(to) };
      const scope = cursorScope('doctor-slots', undefined, { id, from: range.from.toISOString(), to: range.to.toISOString() });
      let found = true;
      const page = await paged(cursors, scope, { limit, cursor }, slotSortKey, async (request) => {
        const slots = await freeSlotsOf(db, id, range, clock.now(), request);
        found = slots !== undefined;
        return slots ?? { items: [], next: null };
      });
      if (!found) throw notFound(`schedule for doctor ${id}`);
      return page;
    },
  );
};
