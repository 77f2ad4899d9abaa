import type { Kysely, Transaction } from 'kysely';
import type { RecordedEvent } from '../../application/ports/event-store.js';

/**
 * A read model as the runtime sees it. `Tables` is the read model's own kysely table interface
 * (declared with `type`, not `interface`, like every kysely table map here), unqualified: the
 * runtime decides which PostgreSQL schema the tables live in (see `generationSchema`).
 */
export type ProjectionDefinition<Tables> = {
  /** Lower-case words joined by single underscores, e.g. `booking_details`; names schemas and locks. */
  readonly name: string;
  /**
   * Bump it whenever `migrate` or `apply` changes what ends up in the tables: a process running a
   * higher version builds a fresh generation from the first event beside the live one and swaps
   * it in once it has caught up. Never lower it.
   */
  readonly version: number;
  /** The event types `apply` receives; the checkpoint still advances over every other event. */
  readonly eventTypes: readonly string[];
  /**
   * Creates the tables and indexes of one fresh generation, with unqualified names: it runs in a
   * transaction whose `search_path` is that generation's schema and nothing else.
   */
  migrate(db: Kysely<unknown>): Promise<void>;
  /**
   * Applies a batch, in global order, inside the runtime's transaction (same `search_path`), which
   * also writes the checkpoint. Throwing rolls back the whole batch. Write it idempotently anyway
   * (upsert by key, version guards): idempotence is what makes a rebuild's catch-up and any
   * future replay safe.
   */
  apply(trx: Transaction<Tables>, events: readonly RecordedEvent[]): Promise<void>;
};

/** A definition with its table types erased, so that projections of different shapes fit one list. */
export type Projection = ProjectionDefinition<unknown>;

const namePattern = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/;
/** PostgreSQL truncates identifiers at 63 bytes; `rm_` + name + `__g` + generation must fit. */
const maxNameLength = 40;

export function defineProjection<Tables>(definition: ProjectionDefinition<Tables>): Projection {
  if (!namePattern.test(definition.name) || definition.name.length > maxNameLength) {
    throw new RangeError(
      `Projection name "${definition.name}" must be lower-case words joined by single underscores, at most ${maxNameLength} characters`,
    );
  }
  if (!Number.isSafeInteger(definition.version) || definition.version < 1) {
    throw new RangeError(`Projection ${definition.name}: version must be a positive integer`);
  }
  return {
    name: definition.name,
    version: definition.version,
    eventTypes: [...definition.eventTypes],
    migrate: (db) => definition.migrate(db),
    // kysely's database type is invariant, so a list of read models of different shapes needs one
    // erasure; the runtime always hands in a transaction whose search_path holds exactly `Tables`.
    apply: (trx, events) => definition.apply(trx as unknown as Transaction<Tables>, events),
  };
}

/**
 * The stable schema the query side reads: one view per table of the active generation, replaced
 * atomically when a rebuild swaps in. Query with `db.withSchema(readSchema('bookings'))`.
 */
export function readSchema(projectionName: string): string {
  return `rm_${projectionName}`;
}

/**
 * Where one generation's tables live. Names cannot contain `__`, so this never collides with
 * another projection's read schema.
 */
export function generationSchema(projectionName: string, generation: number): string {
  return `rm_${projectionName}__g${generation}`;
}
