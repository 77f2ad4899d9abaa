/**
 * One row per event that names an actor or a correlation: the audit API's way from a person or
 * a request to everything they caused, across aggregates, without scanning the log.
 */
export type AuditEventsTable = {
  stream_id: string;
  revision: number;
  /** `Position` parts as decimal text (pg hands bigint back as text anyway). */
  position_commit: string;
  position_prepare: string;
  event_type: string;
  occurred_at: Date;
  actor_id: string | null;
  correlation_id: string | null;
};

export type AuditIndexTables = { audit_events: AuditEventsTable };

export const auditIndexProjectionName = 'audit_index';

/** The read schema's tables as the query side names them (`rm_audit_index.audit_events`). */
export type AuditIndexDatabase = { 'rm_audit_index.audit_events': AuditEventsTable };
