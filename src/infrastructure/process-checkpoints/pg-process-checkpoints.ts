import { sql, type Kysely } from 'kysely';
import type { ProcessCheckpoints } from '../../application/ports/process-checkpoints.js';
import type { Position } from '../../application/ports/position.js';

export type ProcessCheckpointTables = {
  process_checkpoints: {
    process_name: string;
    /** numeric(20): both parts of a position are unsigned 64-bit; pg returns them as strings. */
    position_commit: string;
    position_prepare: string;
    updated_at: Date;
  };
};

/** Process-manager checkpoints in PostgreSQL, one row each. */
export class PgProcessCheckpoints implements ProcessCheckpoints {
  constructor(private readonly db: Kysely<ProcessCheckpointTables>) {}

  async load(processName: string): Promise<Position | undefined> {
    const row = await this.db
      .selectFrom('process_checkpoints')
      .select(['position_commit', 'position_prepare'])
      .where('process_name', '=', processName)
      .executeTakeFirst();
    return row && { commit: BigInt(row.position_commit), prepare: BigInt(row.position_prepare) };
  }

  async save(processName: string, position: Position): Promise<void> {
    const commit = position.commit.toString();
    const prepare = position.prepare.toString();
    // Two instances may race; the later position wins whichever commits last.
    await this.db
      .insertInto('process_checkpoints')
      .values({ process_name: processName, position_commit: commit, position_prepare: prepare, updated_at: new Date() })
      .onConflict((conflict) =>
        conflict.column('process_name').doUpdateSet({ position_commit: commit, position_prepare: prepare, updated_at: new Date() }).where(
          sql<boolean>`(process_checkpoints.position_commit, process_checkpoints.position_prepare) < (${commit}::numeric, ${prepare}::numeric)`,
        ),
      )
      .execute();
  }
}
