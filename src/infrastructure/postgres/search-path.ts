import type pg from 'pg';

/**
 * Where every connection of ours resolves unqualified names (`events`, `access_log`, the read
 * models' tables): `public` alone, which only the migrating owner may create in.
 *
 * PostgreSQL's default, `"$user", public`, looks first in a schema named after the login; the
 * service's login may create schemas (the projector makes one per generation), so whoever holds
 * it could make that schema, put an `events` of their own in it (a copy without the triggers,
 * free to edit), and have every later connection of the service read and append there. Set by
 * a statement of its own, as `idle_in_transaction_session_timeout` is: a startup `options` could
 * be replaced by one in the URL, and some poolers drop it. Projection transactions still narrow
 * it to a generation's schema, transaction-scoped (`withSearchPath`).
 */
export const pinnedSearchPath = 'public';

/** Pins `search_path` for the rest of the client's session; a client whose pin fails must not be used. */
export async function pinSearchPath(client: pg.ClientBase): Promise<void> {
  await client.query(`SET search_path = ${pinnedSearchPath}`);
}
