/** PostgreSQL's "column does not exist". */
const undefinedColumn = '42703';

/**
 * Whether a read failed because the active generation of its read model predates a column: after
 * a deploy that bumps a projection's version, the new version rebuilds beside the old one, whose
 * tables keep serving until it swaps in, and readers must keep answering meanwhile.
 */
export function isUndefinedColumn(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === undefinedColumn;
}
