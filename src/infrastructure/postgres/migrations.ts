import type { Migration } from 'kysely';
import { eventStoreMigration } from '../pg-event-store/pg-event-store.migration.js';
import { projectionCheckpointsMigration } from '../../projections/runtime/projection-checkpoints.migration.js';

/**
 * Every schema migration, by name; kysely applies them in name order. Each module keeps its
 * migration beside its code and registers it here under a numbered name.
 */
export const migrations: Record<string, Migration> = {
  '0001_event_store': eventStoreMigration,
  '0200_projections': projectionCheckpointsMigration,
};
