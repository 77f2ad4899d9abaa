/**
 * PostgreSQL's wire protocol counts a statement's bind parameters in 16 bits. Past this, `pg`
 * sends a count that has wrapped around and the server refuses the statement ("bind message has
 * 1664 parameter formats but 0 parameters"): a batch of 3,200 bookings at 21 columns did.
 */
export const postgresParameterLimit = 65_535;

/**
 * `rows` cut, in order, into runs that each fit one multi-row insert: kysely binds every value of
 * every row as one parameter, so a row costs its number of keys. The whole batch, in one run, when
 * it fits: the usual case keeps its single statement.
 *
 * Callers write rows that are distinct per key (one per key after `foldRows`): each row meets only
 * its own stored row and version guard, so which run lands first changes nothing.
 */
export function withinParameterLimit<Row extends object>(rows: readonly Row[], limit = postgresParameterLimit): Row[][] {
  const runs: Row[][] = [];
  let run: Row[] = [];
  let parameters = 0;
  for (const row of rows) {
    const cost = Object.keys(row).length;
    if (run.length > 0 && parameters + cost > limit) {
      runs.push(run);
      run = [];
      parameters = 0;
    }
    run.push(row);
    parameters += cost;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}
