import { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { appointmentStreamId } from '../../../domain/appointment/appointment.decider.js';
import { doctorScheduleStreamId } from '../../../domain/doctor-schedule/doctor-schedule.decider.js';
import { patientAgendaStreamId } from '../../../domain/patient-agenda/patient-agenda.decider.js';
import { hasRole } from '../../../domain/shared/actor.js';
import { requestInstantSchema } from '../../../domain/shared/calendar-date.js';
import type pg from 'pg';
import { z } from 'zod';
import { anyPatient, verifyAccessLog, type AccessLog } from '../../../application/audit/access-log.js';
import { exportEvents } from '../../../application/audit/audit-export.js';
import { withholdingHealthData } from '../../../application/audit/health-data.js';
import { verifyChain } from '../../../application/audit/hash-chain.js';
import type { PersonalDataVault } from '../../../application/privacy/personal-data-vault.js';
import { revealingForAudit, unreadablePlaceholder } from '../../../application/audit/unreadable-events.js';
import type { EventStore } from '../../../application/ports/event-store.js';
import { auditEventsAt, historyPage, readAuditedStream, stateAt, type AuditEvent, type EventReader, type EventRef, type StateTarget } from '../../../application/audit/stream-history.js';
import { findAppointment } from '../../../projections/appointments/appointments.queries.js';
import { indexedEvents } from '../../../projections/audit-index/audit-index.queries.js';
import { auditIndexProjectionName, type AuditIndexDatabase } from '../../../projections/audit-index/audit-index.table.js';
import { accessLogPlugin, type PatientResolver } from '../../audit/access-log.plugin.js';
import { PgAccessLog } from '../../audit/pg-access-log.js';
import type { IdentityTables } from '../../identity/identity.tables.js';
import { createKysely } from '../../postgres/database.js';
import { requireRoles } from '../plugins/auth.plugin.js';
import { securityEventRoutes } from './security-events.query-routes.js';
import { HttpProblem } from '../problem.js';
import { formatPosition } from '../../../application/ports/position.js';
import { callerOf, consistencyHeaders, cursorScope, notCaughtUp, notFound, paged, pageQuery, pageSchema, type QueryRoutesOptions } from '../query-context.js';
import { wholeNumberText } from '../../whole-number-text.js';
import { inTimeOrder, inTimeOrderIssue, rangeBound, timeRange } from '../range-bound.js';

const json = z.record(z.string(), z.unknown());

const auditEventSchema = z
  .object({
    streamId: z.string(),
    revision: z.number().int(),
    eventId: z.string().describe('The event id, which the chain (version 2) hashes; `hash-chain.ts` `eventHash` lower-cases it'),
    position: z.string().describe('Global position, as `Event-Position` gives it'),
    type: z.string(),
    schemaVersion: z.number().int(),
    occurredAt: z.string(),
    recordedAt: z.string(),
    data: json.describe(
      `Personal fields revealed (\`[erased]\` once their subject is erased, \`${unreadablePlaceholder}\` where they cannot be revealed: see \`unreadableFields\`); to an admin who is no auditor, appointments' reasons and clinical notes read \`[withheld]\``,
    ),
    metadata: json.describe('actorId, actorRoles, requestId, correlationId, causationId, ip, userAgent, occurredAt, schemaVersion, chainVersion (2; absent on events hashed before it), prevHash, hash'),
    hash: z
      .string()
      .nullable()
      .describe(
        'null: appended outside the command loop. Covers the event as stored: type, data with its personal fields sealed, metadata without hash, revision, streamId, eventId. A line whose `data` is revealed cannot be rehashed; an export with `form=stored` can, line by line',
      ),
    prevHash: z.string().nullable(),
    unreadableFields: z
      .array(z.string())
      .optional()
      .describe(
        `Only on an event whose personal data could not be revealed (ciphertext that does not open, a key that cannot be unwrapped, \`personalData\` metadata that does not parse): the fields of \`data\` (dotted paths) that read \`${unreadablePlaceholder}\`. The rest of the event is as stored.`,
      ),
  })
  .meta({ id: 'AuditEvent' });

const accessLogEntrySchema = z
  .object({
    id: z.string(),
    at: z.string(),
    actorId: z.string(),
    actorRoles: z.array(z.string()),
    action: z.string(),
    resource: z.string(),
    patientId: z.string().nullable().describe(`\`${anyPatient}\`: a bulk read (an export) that may hold any patient's data`),
    outcome: z.string().describe('granted, denied (403), not-found (404) or failed'),
    statusCode: z.number().int(),
    ip: z.string().nullable(),
    userAgent: z.string().nullable(),
    requestId: z.string(),
    prevHash: z.string(),
    hash: z.string(),
  })
  .meta({ id: 'AccessLogEntry' });

const streamParams = z.object({ streamId: z.string().min(3).max(300) });
const stateQuery = z
  .strictObject({
    at: requestInstantSchema.optional().describe('The state as it stood at this instant'),
    version: wholeNumberText(0).optional().describe('The state right after the event of this revision'),
  })
  .refine((query) => query.at === undefined || query.version === undefined, { message: 'give `at` or `version`, not both', path: ['version'] });
const revisionKey = z.number().int().min(0);
const indexKey = z.object({ position: z.string().regex(/^\d{1,20}\.\d{1,19}$/) });
const accessLogKey = z.string().regex(/^\d{1,19}$/);

const chainEventSchema = z.object({ revision: z.number().int(), eventId: z.string() });
const verificationSchema = z.object({
  streamId: z.string(),
  status: z
    .enum(['intact', 'unverified-tail', 'broken'])
    .describe(
      '`broken`: a link does not hold (see `brokenAt`); `unverified-tail`: every link holds, but the stream ends in events without a hash that no later link covers, so nothing vouches for them (see `unverifiedFrom`); `intact`: every event is covered by a link',
    ),
  eventsChecked: z.number().int(),
  lastHash: z.string().optional().describe('What the next event must link to; over an unverified tail, computed over it as it reads now'),
  brokenAt: z
    .object({ revision: z.number().int(), reason: z.enum(['prev-hash-mismatch', 'hash-mismatch', 'revision-gap']), eventId: z.string() })
    .optional()
    .describe('The first link that does not hold: the stream was changed after it was appended'),
  unverifiedFrom: chainEventSchema
    .optional()
    .describe('The first event of the unverified tail: it and every event after it have no hash, and may have been edited (a hashed event stripped of its hash reads the same)'),
  unhashed: z
    .array(chainEventSchema)
    .describe(
      "Events (before any break and the unverified tail) without a hash of their own, appended outside the command loop: each is verified by the next hashed event's link, which an edit of it breaks (`prev-hash-mismatch`)",
    ),
});
const accessLogVerificationSchema = z.object({
  status: z.enum(['intact', 'broken']),
  entriesChecked: z.number().int(),
  lastHash: z.string().optional(),
  brokenAt: z.object({ id: z.string(), reason: z.string() }).optional(),
});

/** 409: the request is sound, the log is what cannot answer it past this event. */
const unreadableEvent = (streamId: string, revision: number) =>
  new HttpProblem(
    409,
    'unreadable-event',
    'Unreadable event',
    `Event ${revision} of ${streamId} cannot be revealed, and does not decode with its personal fields reading ${unreadablePlaceholder}: no state can be folded past it`,
    { extensions: { streamId, revision } },
  );

type AuditRoutesOptions = QueryRoutesOptions & {
  /** Personal fields revealed, `[erased]` or `[unreadable]`: what auditors read. */
  readonly events: EventReader;
  /** As stored (sealed): what the hash chain covers. */
  readonly storedEvents: EventStore;
  /** A stored log revealed as `events` is: for a read that narrows the log before it reveals. */
  readonly revealing: (stored: EventStore) => EventReader;
  readonly accessLog: AccessLog;
  readonly index: ReturnType<typeof createKysely<AuditIndexDatabase>>;
  /** Longest an export waits for the events committed before it to be readable in global order. */
  readonly consistencyTimeoutMs: number;
};

/** NDJSON lines gathered into chunks of about this many characters: fewer, larger socket writes. */
const exportChunkChars = 64 * 1024;

async function* ndjson(events: AsyncIterable<AuditEvent>): AsyncGenerator<string> {
  let chunk = '';
  for await (const event of events) {
    chunk += `${JSON.stringify(event)}\n`;
    if (chunk.length >= exportChunkChars) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk.length > 0) yield chunk;
}

/** The audit trail for AUDITOR and ADMIN (API.md, `/v1/audit/*`); every call is access-logged. */
const auditRoutes: FastifyPluginAsyncZod<AuditRoutesOptions> = async (app, { events, storedEvents, revealing, accessLog, index, cursors, consistentWith, consistencyTimeoutMs }) => {
  const tags = ['audit'];
  const security = [{ bearerAuth: [] }];
  const auditor = requireRoles('AUDITOR', 'ADMIN');
  const indexed = consistentWith([auditIndexProjectionName]);
  // The routes below that read a stream declare `Consistency-Position` too: every position a
  // command returned is already visible to a stream read, so a well-formed one has nothing to
  // wait for, and a malformed one is refused (400) as on every other query route. The export
  // reads the global order instead, which stops below the oldest transaction still open: it
  // waits as the index does, whose checkpoint passes a position only once that order has.
  const headers = consistencyHeaders;
  /** Auditors read everything; an admin who is no auditor reads appointments without their health data. */
  const shownTo = (request: FastifyRequest, revealed: EventReader): EventReader => (hasRole(callerOf(request), 'AUDITOR') ? revealed : withholdingHealthData(revealed));
  const eventsFor = (request: FastifyRequest) => shownTo(request, events);
  const readingFor = (request: FastifyRequest) => (stored: EventStore) => shownTo(request, revealing(stored));

  /** A page of the audit index, each row replaced by its event as the stream history shows it. */
  const fromLog = async <Key>(request: FastifyRequest, page: Promise<{ items: EventRef[]; next: Key | null }>) => {
    const { items, next } = await page;
    return { items: await auditEventsAt(eventsFor(request), items), next };
  };

  app.get(
    '/streams/:streamId/events',
    {
      onRequest: auditor,
      schema: { tags, security, summary: 'Every event of one aggregate, with metadata and chain hashes, by revision', headers, params: streamParams, querystring: pageQuery, response: { 200: pageSchema(auditEventSchema) } },
    },
    async (request) => {
      const { streamId } = request.params;
      const scope = cursorScope('audit-stream-events', callerOf(request).id, { streamId });
      return paged(cursors, scope, request.query, revisionKey, async (page) => {
        const history = await historyPage(eventsFor(request), streamId, page);
        if (!history) throw notFound(`stream ${streamId}`);
        return history;
      });
    },
  );

  app.get(
    '/streams/:streamId/state',
    {
      onRequest: auditor,
      schema: {
        tags,
        security,
        summary: "The aggregate's state as it was (`at` or `version`; neither: now), folded with the command side's evolve",
        description: `An event whose personal data cannot be revealed is folded with those fields reading \`${unreadablePlaceholder}\`; should that not decode, the answer is 409 \`unreadable-event\` naming its revision.`,
        headers,
        params: streamParams,
        querystring: stateQuery,
        response: {
          200: z.object({
            streamId: z.string(),
            category: z.string(),
            version: z.number().int(),
            position: z.string().nullable(),
            occurredAt: z.string().nullable(),
            state: z.unknown(),
            unreadableRevisions: z.array(z.number().int()).describe(`Revisions folded whose personal fields could not be revealed and read \`${unreadablePlaceholder}\` (in the state too, where it keeps them)`),
          }),
        },
      },
    },
    async (request) => {
      const { streamId } = request.params;
      const { at, version } = request.query;
      const target: StateTarget = version !== undefined ? { version } : at !== undefined ? { at: new Date(at) } : { latest: true };
      const answer = await stateAt(eventsFor(request), streamId, target);
      switch (answer.status) {
        case 'found':
          return answer.past;
        case 'unknown-category':
          throw notFound(`aggregate category for ${streamId}`);
        case 'no-stream':
          throw notFound(`stream ${streamId}`);
        case 'no-such-version':
          throw notFound(`version ${String(version)} of ${streamId} (its last is ${answer.lastVersion})`);
        case 'unreadable-event':
          throw unreadableEvent(streamId, answer.revision);
        default: {
          const _exhaustive: never = answer;
          return _exhaustive;
        }
      }
    },
  );

  app.get(
    '/actors/:userId/events',
    {
      onRequest: auditor,
      preHandler: indexed,
      schema: {
        tags,
        security,
        summary: 'Everything one person did, across aggregates, in time order',
        headers,
        params: z.object({ userId: z.string().min(1).max(200) }),
        querystring: pageQuery.extend(timeRange).refine(inTimeOrder, inTimeOrderIssue),
        response: { 200: pageSchema(auditEventSchema) },
      },
    },
    async (request) => {
      const { userId } = request.params;
      const filter = { actorId: userId, from: rangeBound(request.query.from), to: rangeBound(request.query.to) };
      const scope = cursorScope('audit-actor-events', callerOf(request).id, { userId, from: request.query.from, to: request.query.to });
      return paged(cursors, scope, request.query, indexKey, (page) => fromLog(request, indexedEvents(index, filter, page)));
    },
  );

  app.get(
    '/correlations/:id/events',
    {
      onRequest: auditor,
      preHandler: indexed,
      schema: {
        tags,
        security,
        summary: 'Everything one request caused, across aggregates, in time order',
        headers,
        params: z.object({ id: z.string().min(1).max(200) }),
        querystring: pageQuery,
        response: { 200: pageSchema(auditEventSchema) },
      },
    },
    async (request) => {
      const correlationId = request.params.id;
      const scope = cursorScope('audit-correlation-events', callerOf(request).id, { correlationId });
      return paged(cursors, scope, request.query, indexKey, (page) => fromLog(request, indexedEvents(index, { correlationId }, page)));
    },
  );

  // HEAD declared with GET rather than left to fastify, whose HEAD runs the handler and drains the
  // stream it returns to nobody: the whole export read, every key looked up, after the reply.
  app.route({
    method: ['GET', 'HEAD'],
    url: '/export',
    onRequest: auditor,
    schema: {
      tags,
      security,
      summary: 'NDJSON: one audit event per line (with chain hashes), in global order, streamed; HEAD answers its headers without reading any',
      description: `Each line is an AuditEvent; one whose personal data cannot be revealed is exported with those fields reading \`${unreadablePlaceholder}\` and named in \`unreadableFields\`. The export holds the log as it stood when it began: the \`Export-Position\` header names the last position it may hold (at or after its last line's; \`0.0\` for an empty log), and events committed while it streams, which read after it, are left out.`,
      headers,
      querystring: z
        .strictObject({
          ...timeRange,
          streamPrefix: z.string().min(1).max(200).optional().describe('e.g. `booking-`'),
          form: z
            .enum(['revealed', 'stored'])
            .default('revealed')
            .describe(
              '`revealed` (default): personal fields revealed, `[erased]` or unreadable, as every audit read shows them. `stored` (AUDITOR only): each event as stored, personal fields sealed, so each line\'s `hash` can be recomputed offline with `eventHash(prevHash, line)` (`hash-chain.ts`)',
            ),
        })
        .refine(inTimeOrder, inTimeOrderIssue),
    },
    preHandler: indexed,
    handler: async (request, reply) => {
      const { from, to, streamPrefix, form } = request.query;
      // Sealed is not withheld: an event stored before sealing existed, or appended outside the
      // command loop, holds its health data in clear, which an admin who is no auditor never reads.
      if (form === 'stored' && !hasRole(callerOf(request), 'AUDITOR')) {
        throw new HttpProblem(403, 'forbidden', 'Forbidden', 'The stored form of the export needs the role AUDITOR');
      }
      // Everything committed before the request, or nothing: the global order holds committed
      // events back behind older transactions still open, and an export that stopped short of
      // them would say nothing of it. HEAD waits too, so that it answers as GET would.
      if (storedEvents.committedVisible && !(await storedEvents.committedVisible(consistencyTimeoutMs))) {
        throw notCaughtUp(`Events committed before this request are held back by a transaction still open after ${consistencyTimeoutMs} ms; try again shortly`);
      }
      // The cut, taken once every event committed before the request is readable: the export ends
      // there however long it streams.
      const upTo = await storedEvents.headPosition();
      reply.header('export-position', formatPosition(upTo));
      reply.type('application/x-ndjson; charset=utf-8');
      if (request.method === 'HEAD') return reply.send();
      const reading = form === 'stored' ? (stored: EventStore): EventReader => stored : readingFor(request);
      const lines = ndjson(exportEvents(storedEvents, reading, { from: rangeBound(from), to: rangeBound(to), streamPrefix, upTo }));
      // Readable.from pulls the next chunk only when the socket has drained the last: backpressure.
      return reply.send(Readable.from(lines, { objectMode: false }));
    },
  });

  app.get(
    '/verify',
    {
      onRequest: auditor,
      schema: { tags, security, summary: "Recomputes one stream's hash chain; names the first broken revision, or where an unverified tail begins, and the events without a hash a link covers", headers, querystring: z.strictObject({ streamId: z.string().min(3).max(300) }), response: { 200: verificationSchema } },
    },
    async (request) => {
      const { streamId } = request.query;
      const read = await readAuditedStream(storedEvents, streamId);
      if (read.status === 'no_stream') throw notFound(`stream ${streamId}`);
      const verification = await verifyChain(read.events);
      return { streamId, ...verification, unhashed: [...verification.unhashed] };
    },
  );

  app.get(
    '/access-log',
    {
      onRequest: auditor,
      schema: {
        tags,
        security,
        summary: "Who read patients' data and the audit trail, oldest first",
        querystring: pageQuery.extend({
          actorId: z.string().min(1).max(200).optional(),
          patientId: z.string().min(1).max(200).optional().describe("This patient's records, with the bulk reads that may have held their data"),
          ...timeRange,
        }).refine(inTimeOrder, inTimeOrderIssue),
        response: { 200: pageSchema(accessLogEntrySchema) },
      },
    },
    async (request) => {
      const { actorId, patientId, from, to } = request.query;
      const scope = cursorScope('audit-access-log', callerOf(request).id, { actorId, patientId, from, to });
      const filter = { actorId, patientId, from: rangeBound(from), to: rangeBound(to) };
      const page = await paged(cursors, scope, request.query, accessLogKey, (page) => accessLog.list(filter, page));
      return { ...page, items: page.items.map((entry) => ({ ...entry, actorRoles: [...entry.actorRoles], at: entry.at.toISOString() })) };
    },
  );

  app.get(
    '/access-log/verify',
    {
      onRequest: auditor,
      schema: { tags, security, summary: "Recomputes the access log's hash chain; names the first broken entry", response: { 200: accessLogVerificationSchema } },
    },
    async () => verifyAccessLog(accessLog.all()),
  );
};

/** The part of a `/v1/appointments/me` answer that says whose appointments it holds. */
const appointmentsAnswered = z.object({ items: z.array(z.object({ patientId: z.string() })) });
/** The answer about to be sent, parsed, when it is JSON (not a stream). */
function answerOf(payload: unknown): unknown {
  const body = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : undefined;
  if (body === undefined) return undefined;
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

function answerAs<T>(schema: z.ZodType<T>, payload: unknown): T | undefined {
  const answered = schema.safeParse(answerOf(payload));
  return answered.success ? answered.data : undefined;
}

/**
 * What an audit answer says about patients, wherever it says it: every `patientId` in it (an
 * appointment booked, a doctor's slot held, an agenda entry, a state holding them), and every
 * appointment or agenda stream among its events (an appointment's later events, its notes
 * among them, do not repeat the patient).
 */
function patientsInAnswer(value: unknown, found = { patientIds: new Set<string>(), streamIds: new Set<string>() }) {
  if (Array.isArray(value)) {
    for (const item of value) patientsInAnswer(item, found);
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, inner] of Object.entries(value)) {
      if (key === 'patientId' && typeof inner === 'string') found.patientIds.add(inner);
      else if (key === 'streamId' && typeof inner === 'string') found.streamIds.add(inner);
      else patientsInAnswer(inner, found);
    }
  }
  return found;
}

/**
 * The patients whose appointments an answer of `/v1/appointments/me` holds, as sent (a refusal
 * holds none), and the caller when a patient: a patient's read of an empty list still concerns
 * them.
 */
function patientsOfMyAppointments(request: FastifyRequest, payload: unknown): string[] {
  const own = request.actor?.roles.includes('PATIENT') ? [request.actor.id] : [];
  // Only a doctor's answer holds other patients' appointments: nobody else's is parsed again.
  if (!request.actor?.roles.includes('DOCTOR')) return own;
  const answered = answerAs(appointmentsAnswered, payload);
  return [...new Set([...own, ...(answered?.items.map((item) => item.patientId) ?? [])])];
}

/**
 * Which reads are recorded in the access log, and whose data each concerns: a patient's
 * appointments (their clinical notes included) and every audit endpoint. An answer holding
 * several patients' data (a doctor's `/v1/appointments/me`, a page of audit events) concerns
 * each of them: one record each. An export concerns `anyPatient` unless it is one patient's.
 */
function auditedReads(db: QueryRoutesOptions['db'], storedEvents: EventStore): (routeUrl: string) => PatientResolver | undefined {
  // Only a well-formed id is looked up: the request may carry anything (a NUL byte, say), and a
  // failed lookup would refuse the read as if the access log were down.
  const appointmentPatient = async (appointmentId: string | undefined) =>
    appointmentId === undefined || !z.uuid().safeParse(appointmentId).success ? null : ((await findAppointment(db, appointmentId))?.patient_id ?? null);
  const param = (request: FastifyRequest, name: string): string | undefined => {
    const params = z.record(z.string(), z.string()).safeParse(request.params);
    return params.success ? params.data[name] : undefined;
  };
  const query = (request: FastifyRequest, name: string): string | undefined => {
    const parsed = z.record(z.string(), z.unknown()).safeParse(request.query);
    const value = parsed.success ? parsed.data[name] : undefined;
    return typeof value === 'string' ? value : undefined;
  };
  // An appointment stream's first event names its patient (an id, stored as is): unlike the
  // appointments read model, the log cannot be behind the stream an auditor is reading.
  const streamPatient = async (streamId: string) => {
    if (!z.uuid().safeParse(streamId.slice('appointment-'.length)).success) return null;
    const read = await storedEvents.readStream(streamId, { maxCount: 1 });
    if (read.status !== 'found') return null;
    for await (const event of read.events) return typeof event.data.patientId === 'string' ? event.data.patientId : null;
    return null;
  };
  const ofStream = async (streamId: string | undefined) => {
    if (streamId?.startsWith('appointment-')) return streamPatient(streamId);
    if (streamId?.startsWith('patientAgenda-')) return streamId.slice('patientAgenda-'.length) || null;
    return null;
  };
  /** The patients an audit answer holds data of (see `patientsInAnswer`), and the patient of the stream asked for. */
  const ofAnswer = async (payload: unknown, streamId?: string) => {
    const { patientIds, streamIds } = patientsInAnswer(answerOf(payload));
    if (streamId !== undefined) streamIds.add(streamId);
    const ofStreams = await Promise.all([...streamIds].map(ofStream));
    return [...new Set([...patientIds, ...ofStreams.filter((patientId) => patientId !== null)])];
  };
  /**
   * An export reads as it streams, so whose data it holds is not known before it is sent: one
   * appointment or agenda names its patient; any other prefix that may take in streams holding
   * patients' data (a doctor's schedule names whose slot each is) may hold anyone's.
   */
  const ofExport = async (streamPrefix: string | undefined) => {
    const prefix = streamPrefix ?? '';
    const onePatients = [appointmentStreamId(''), patientAgendaStreamId('')];
    const patientCategories = [...onePatients, doctorScheduleStreamId('')];
    if (!patientCategories.some((category) => category.startsWith(prefix) || prefix.startsWith(category))) return null;
    const oneStream = onePatients.some((category) => prefix.startsWith(category) && z.uuid().safeParse(prefix.slice(category.length)).success);
    // A whole uuid is no other uuid's beginning: the prefix is that one stream.
    return (oneStream ? await ofStream(prefix) : null) ?? anyPatient;
  };
  return (routeUrl) => {
    if (routeUrl === '/v1/appointments/:id') return (request) => appointmentPatient(param(request, 'id'));
    if (routeUrl === '/v1/appointments/me') return async (request, payload) => patientsOfMyAppointments(request, payload);
    if (routeUrl.startsWith('/v1/audit/streams/')) return (request, payload) => ofAnswer(payload, param(request, 'streamId'));
    if (routeUrl === '/v1/audit/verify') return (request) => ofStream(query(request, 'streamId'));
    if (routeUrl === '/v1/audit/actors/:userId/events' || routeUrl === '/v1/audit/correlations/:id/events') return (_request, payload) => ofAnswer(payload);
    if (routeUrl === '/v1/audit/export') return (request) => ofExport(query(request, 'streamPrefix'));
    if (routeUrl.startsWith('/v1/audit/')) return async (request) => query(request, 'patientId') ?? null;
    return undefined;
  };
}

/**
 * The audit API and the access logging of sensitive reads, in one registration. It must come
 * before the appointment routes: the logging hook lives on the root instance and fastify only
 * passes hooks on to routes registered after them. Reads `events` as stored for chain checks,
 * and revealed by `personalData` for everything else.
 */
export const auditQueryRoutes = fp<
  QueryRoutesOptions & { readonly pool: pg.Pool; readonly events: EventStore; readonly personalData: PersonalDataVault; readonly consistencyTimeoutMs: number }
>(
  async (app, options) => {
    const storedEvents = options.events;
    const revealing = (stored: EventStore) => revealingForAudit(stored, options.personalData);
    const events = revealing(storedEvents);
    const accessLog = new PgAccessLog(options.pool);
    const index = createKysely<AuditIndexDatabase>(options.pool);
    await app.register(accessLogPlugin, { accessLog, now: () => options.clock.now(), audited: auditedReads(options.db, storedEvents) });
    await app.register(auditRoutes, { ...options, prefix: '/v1/audit', events, storedEvents, revealing, accessLog, index });
    await app.register(securityEventRoutes, { prefix: '/v1/audit', db: createKysely<IdentityTables>(options.pool), cursors: options.cursors });
  },
  { name: 'audit-query-routes' },
);
