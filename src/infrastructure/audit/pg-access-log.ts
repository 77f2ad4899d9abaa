import type pg from 'pg';
import { z } from 'zod';
import {
  anyPatient,
  canonicalAccessRecord,
  type AccessLog,
  type AccessLogEntry,
  type AccessLogFilter,
  type AccessRecord,
} from '../../application/audit/access-log.js';

type AccessLogRow = {
  id: string;
  at_ms: number;
  actor_id: string;
  actor_roles: unknown;
  action: string;
  resource: string;
  patient_id: string | null;
  outcome: string;
  status_code: number;
  ip: string | null;
  user_agent: string | null;
  request_id: string;
  prev_hash: string;
  hash: string;
};

// Own parsers per query, as the event store does: other libraries change the process-wide pg.types.
const parsers: Record<number, (text: string) => unknown> = {
  23: Number, // int4
  701: Number, // float8
  114: (text) => JSON.parse(text), // json
};
const columnTypes = { getTypeParser: (oid: number) => parsers[oid] ?? ((text: string) => text) };

// at as epoch milliseconds (exact: stored from a millisecond ISO string), roles as JSON.
const columns = `id::text AS id, (extract(epoch FROM at) * 1000)::float8 AS at_ms, actor_id, array_to_json(actor_roles) AS actor_roles,
  action, resource, patient_id, outcome, status_code, ip, user_agent, request_id, prev_hash, hash`;

const rolesSchema = z.array(z.string());

/**
 * PostgreSQL text cannot hold NUL, and a request URL or user agent may carry one (`%00`); an
 * access that cannot be recorded is refused, so such a request would answer 503 instead of its
 * 4xx. NUL becomes U+FFFD before the record is hashed and stored, so the chain still verifies.
 */
function storable(record: AccessRecord): AccessRecord {
  const clean = (value: string): string => value.replaceAll('\u0000', '\uFFFD');
  const cleanOptional = (value: string | null): string | null => (value === null ? null : clean(value));
  return {
    ...record,
    actorId: clean(record.actorId),
    resource: clean(record.resource),
    patientId: cleanOptional(record.patientId),
    ip: cleanOptional(record.ip),
    userAgent: cleanOptional(record.userAgent),
    requestId: clean(record.requestId),
  };
}

/** Rows read per query when walking the whole log. */
const pageSize = 1000;

/** The access log port on PostgreSQL (`access_log`, migration `0400_audit`). */
export class PgAccessLog implements AccessLog {
  constructor(private readonly pool: pg.Pool) {}

  async record(unsafe: AccessRecord): Promise<void> {
    const record = storable(unsafe);
    await this.pool.query({
      name: 'append_access_log',
      text: 'SELECT o_id FROM append_access_log($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)',
      values: [
        record.at.toISOString(),
        record.actorId,
        [...record.actorRoles],
        record.action,
        record.resource,
        record.patientId,
        record.outcome,
        record.statusCode,
        record.ip,
        record.userAgent,
        record.requestId,
        canonicalAccessRecord(record),
      ],
    });
  }

  async list(filter: AccessLogFilter, page: { readonly limit: number; readonly after?: string | undefined }): Promise<{ items: AccessLogEntry[]; next: string | null }> {
    const conditions: string[] = [];
    const values: unknown[] = [];
    const add = (condition: (parameter: string) => string, value: unknown) => {
      values.push(value);
      conditions.push(condition(`$${values.length}`));
    };
    if (filter.actorId !== undefined) add((p) => `actor_id = ${p}`, filter.actorId);
    if (filter.patientId !== undefined) add((p) => `patient_id = ANY(${p}::text[])`, [filter.patientId, anyPatient]);
    if (filter.from !== undefined) add((p) => `at >= ${p}`, filter.from.toISOString());
    if (filter.to !== undefined) add((p) => `at < ${p}`, filter.to.toISOString());
    if (page.after !== undefined) add((p) => `id > ${p}::bigint`, page.after);
    values.push(page.limit + 1);
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    const result = await this.pool.query<AccessLogRow>({
      text: `SELECT ${columns} FROM access_log ${where} ORDER BY access_log.id LIMIT $${values.length}`,
      values,
      types: columnTypes,
    });
    const items = result.rows.slice(0, page.limit).map(toEntry);
    const last = items.at(-1);
    return { items, next: result.rows.length > page.limit && last ? last.id : null };
  }

  all(): AsyncIterable<AccessLogEntry> {
    const pool = this.pool;
    return {
      async *[Symbol.asyncIterator]() {
        let after = '0';
        for (;;) {
          const result = await pool.query<AccessLogRow>({
            name: 'access_log_page',
            text: `SELECT ${columns} FROM access_log WHERE id > $1::bigint ORDER BY access_log.id LIMIT $2`,
            values: [after, pageSize],
            types: columnTypes,
          });
          const entries = result.rows.map(toEntry);
          yield* entries;
          const last = entries.at(-1);
          if (!last || entries.length < pageSize) return;
          after = last.id;
        }
      },
    };
  }
}

function toEntry(row: AccessLogRow): AccessLogEntry {
  return {
    id: row.id,
    at: new Date(Math.round(row.at_ms)),
    actorId: row.actor_id,
    actorRoles: rolesSchema.catch([]).parse(row.actor_roles),
    action: row.action,
    resource: row.resource,
    patientId: row.patient_id,
    outcome: row.outcome,
    statusCode: row.status_code,
    ip: row.ip,
    userAgent: row.user_agent,
    requestId: row.request_id,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
