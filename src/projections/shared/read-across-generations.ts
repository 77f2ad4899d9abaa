/** PostgreSQL's "column does not exist". */
const undefinedColumn = '42703';
/** PostgreSQL's "relation does not exist". */
export const undefinedTable = '42P01';

/** Whether `error` is PostgreSQL's error `sqlState`. */
export function isSqlState(error: unknown, sqlState: string): boolean {
  return error instanceof Error && 'code' in error && error.code === sqlState;
}

/**
 * Reads with `current`, or with `older` when the active generation of the read model predates a
 * column `current` needs: after a deploy that bumps a projection's version, the new version
 * rebuilds beside the old one, whose tables keep serving until it swaps in, and readers must
 * keep answering meanwhile.
 */
export async function readAcrossGenerations<T>(current: () => Promise<T>, older: () => Promise<T>): Promise<T> {
  try {
    return await current();
  } catch (error) {
    if (!isSqlState(error, undefinedColumn)) throw error;
    return older();
  }
}
