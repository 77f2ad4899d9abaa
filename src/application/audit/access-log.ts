import { canonicalJson, genesisHash, sha256Hex } from './hash-chain.js';

/**
 * HIPAA-style access logging: who read which patient's data (or the audit trail), when, from
 * where, and whether they were let in. Denied attempts are recorded too.
 */

/** `granted` 2xx; `denied` 403; `not-found` 404 (which may hide a denial); `failed` anything else. */
export type AccessOutcome = 'granted' | 'denied' | 'not-found' | 'failed';

export function accessOutcome(statusCode: number): AccessOutcome {
  if (statusCode >= 200 && statusCode < 300) return 'granted';
  if (statusCode === 403) return 'denied';
  if (statusCode === 404) return 'not-found';
  return 'failed';
}

/**
 * The patient of a bulk read (an export of the log) that may hold any patient's data: one record
 * for all of them, which every patient's trail finds, instead of one per patient in the log.
 */
export const anyPatient = '*';

/** One access, as recorded. Absent facts are `null`, never left out, so the canonical form is fixed. */
export type AccessRecord = {
  readonly at: Date;
  readonly actorId: string;
  readonly actorRoles: readonly string[];
  /** The route, e.g. `GET /v1/appointments/:id`. */
  readonly action: string;
  /** What was asked for, e.g. the path `/v1/appointments/42`. */
  readonly resource: string;
  /** The patient whose data it is, where known; `anyPatient` for a bulk read that may hold anyone's. */
  readonly patientId: string | null;
  readonly outcome: AccessOutcome;
  readonly statusCode: number;
  readonly ip: string | null;
  readonly userAgent: string | null;
  readonly requestId: string;
};

/**
 * A stored record with its place in the chain. `id` is a decimal integer, in chain order. The
 * outcome is what the row says, unchecked: a tampered row must still reach verification.
 */
export type AccessLogEntry = Omit<AccessRecord, 'outcome'> & {
  readonly outcome: string;
  readonly id: string;
  readonly prevHash: string;
  readonly hash: string;
};

export type AccessLogFilter = {
  readonly actorId?: string | undefined;
  /** This patient's records, and the bulk reads (`anyPatient`) that may have held their data. */
  readonly patientId?: string | undefined;
  readonly from?: Date | undefined;
  /** Exclusive. */
  readonly to?: Date | undefined;
};

export type AccessLogVerification =
  | { readonly status: 'intact'; readonly entriesChecked: number; readonly lastHash: string }
  | {
      readonly status: 'broken';
      readonly entriesChecked: number;
      readonly brokenAt: { readonly id: string; readonly reason: 'prev-hash-mismatch' | 'hash-mismatch' };
    };

/** The access log port: append-only, hash-chained over the whole log. */
export interface AccessLog {
  /**
   * Appends one record and links it into the chain. Throws when it cannot: the caller must then
   * not hand out what was read (no unlogged access).
   */
  record(record: AccessRecord): Promise<void>;
  /** Records matching `filter`, oldest first, `limit` at a time after the entry id `after`. */
  list(filter: AccessLogFilter, page: { readonly limit: number; readonly after?: string | undefined }): Promise<{ items: AccessLogEntry[]; next: string | null }>;
  /** Every record in chain order, for verification and export. */
  all(): AsyncIterable<AccessLogEntry>;
}

/** The text a record's hash covers after its predecessor's hash. */
export function canonicalAccessRecord(record: Omit<AccessRecord, 'outcome'> & { readonly outcome: string }): string {
  return canonicalJson({
    at: record.at.toISOString(),
    actorId: record.actorId,
    actorRoles: [...record.actorRoles],
    action: record.action,
    resource: record.resource,
    patientId: record.patientId,
    outcome: record.outcome,
    statusCode: record.statusCode,
    ip: record.ip,
    userAgent: record.userAgent,
    requestId: record.requestId,
  });
}

export function accessRecordHash(prevHash: string, record: Omit<AccessRecord, 'outcome'> & { readonly outcome: string }): string {
  return sha256Hex(prevHash + canonicalAccessRecord(record));
}

/** Recomputes the whole log's chain and stops at the first broken link. */
export async function verifyAccessLog(entries: AsyncIterable<AccessLogEntry>): Promise<AccessLogVerification> {
  let prevHash = genesisHash;
  let checked = 0;
  for await (const entry of entries) {
    checked++;
    if (entry.prevHash !== prevHash) return { status: 'broken', entriesChecked: checked, brokenAt: { id: entry.id, reason: 'prev-hash-mismatch' } };
    if (accessRecordHash(prevHash, entry) !== entry.hash) return { status: 'broken', entriesChecked: checked, brokenAt: { id: entry.id, reason: 'hash-mismatch' } };
    prevHash = entry.hash;
  }
  return { status: 'intact', entriesChecked: checked, lastHash: prevHash };
}
