import type { ColumnType, Generated, Selectable } from 'kysely';

/**
 * - `running`: the active generation, being kept up to date;
 * - `rebuilding`: a fresh generation catching up beside the active one;
 * - `failed`: a handler kept throwing on one event; the projection waits for a fix (a restart or
 *   a higher version) instead of skipping the event;
 * - `retired`: replaced by a rebuild; its schema is dropped and its row deleted soon after.
 */
export type CheckpointStatus = 'running' | 'rebuilding' | 'failed' | 'retired';

/** `numeric(20, 0)`: positions are unsigned 64-bit, beyond `bigint`; pg returns them as strings. */
type PositionPart = ColumnType<string, string | undefined, string>;

/**
 * One row per generation of a projection: the active one, plus at most a few being rebuilt or
 * about to be dropped. The partial unique index allows one active generation per name.
 */
export type ProjectionCheckpointsTable = {
  name: string;
  generation: number;
  /** The projection `version` of the code that builds this generation. */
  version: number;
  /** The generation behind the read schema's views: the one queries see and readers wait for. */
  active: boolean;
  status: CheckpointStatus;
  /** False until its schema has been created and migrated (by whoever first holds its lock). */
  schema_ready: ColumnType<boolean, boolean | undefined, boolean>;
  /** The last event committed with the rows (`START` = none yet). */
  position_commit: PositionPart;
  position_prepare: PositionPart;
  events_processed: ColumnType<string, string | undefined, string>;
  last_event_recorded_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  failed_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  error: ColumnType<string | null, string | null | undefined, string | null>;
  failed_event_position: ColumnType<string | null, string | null | undefined, string | null>;
  failed_event_type: ColumnType<string | null, string | null | undefined, string | null>;
  failed_event_id: ColumnType<string | null, string | null | undefined, string | null>;
  /** Who asked for this generation (an actor id, `cli:<os user>`); null when nobody did: a first copy, a new version's. */
  requested_by: ColumnType<string | null, string | null | undefined, string | null>;
  /** The HTTP request that asked; null from the command line. */
  request_id: ColumnType<string | null, string | null | undefined, string | null>;
  requested_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
  reason: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: Generated<Date>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
};

export type CheckpointTables = { projection_checkpoints: ProjectionCheckpointsTable };

export type CheckpointRow = Selectable<ProjectionCheckpointsTable>;
