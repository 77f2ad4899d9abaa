import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Migration `0400_audit`: the access log, append-only like the event log, and the
 * `bookable_app` role the service is meant to run as (see ./README.md, "Deployment").
 *
 * The events table already refuses UPDATE, DELETE and TRUNCATE (`0001_event_store`, EV003);
 * this adds the same guard to `access_log` (AU001). A trigger stops the application and any
 * mistake; it does not stop the table's owner, who can disable it — which is why the service
 * should not connect as the owner but as a member of `bookable_app`, which may only SELECT and
 * INSERT those two tables, while the hash chains show whatever the owner changes anyway.
 */
/**
 * Triggers `<table>_immutable` and `<table>_not_truncated`: UPDATE, DELETE and TRUNCATE of the
 * table raise AU001 (`audit_rows_are_immutable`, created here first).
 */
export async function makeAppendOnly(db: Kysely<unknown>, table: string): Promise<void> {
  await sql`
    CREATE TRIGGER ${sql.raw(`${table}_immutable`)} BEFORE UPDATE OR DELETE ON ${sql.table(table)}
    FOR EACH ROW EXECUTE FUNCTION audit_rows_are_immutable()`.execute(db);
  await sql`
    CREATE TRIGGER ${sql.raw(`${table}_not_truncated`)} BEFORE TRUNCATE ON ${sql.table(table)}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_rows_are_immutable()`.execute(db);
}

export const auditMigration: Migration = {
  async up(db: Kysely<unknown>) {
    // Chained over the whole table in id order: each row's hash covers the previous row's hash
    // and its own canonical record (src/application/audit/access-log.ts), so a row edited,
    // removed or inserted out of turn breaks the chain from there on.
    await sql`
      CREATE TABLE access_log (
        id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at          timestamptz NOT NULL,
        actor_id    text        NOT NULL,
        actor_roles text[]      NOT NULL,
        action      text        NOT NULL,
        resource    text        NOT NULL,
        patient_id  text,
        outcome     text        NOT NULL,
        status_code integer     NOT NULL,
        ip          text,
        user_agent  text,
        request_id  text        NOT NULL,
        prev_hash   text        NOT NULL,
        hash        text        NOT NULL
      )`.execute(db);
    // The audit API's filters: by actor, by patient, by time; each in id order for keyset pages.
    await sql`CREATE INDEX access_log_actor ON access_log (actor_id, id)`.execute(db);
    await sql`CREATE INDEX access_log_patient ON access_log (patient_id, id) WHERE patient_id IS NOT NULL`.execute(db);
    await sql`CREATE INDEX access_log_at ON access_log (at, id)`.execute(db);

    await sql`
      CREATE FUNCTION audit_rows_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'AU001';
      END $$`.execute(db);
    await makeAppendOnly(db, 'access_log');

    await sql.raw(appendAccessLogFunction).execute(db);
    await sql.raw(applicationRole).execute(db);
  },

  async down(db: Kysely<unknown>) {
    await sql`DROP FUNCTION IF EXISTS append_access_log(timestamptz, text, text[], text, text, text, text, integer, text, text, text, text)`.execute(db);
    await sql`DROP TABLE IF EXISTS access_log`.execute(db);
    await sql`DROP FUNCTION IF EXISTS audit_rows_are_immutable()`.execute(db);
  },
};

/**
 * Appends one access record in one round trip. Writers serialise on a transaction-scoped
 * advisory lock (key space 1703, apart from the event store's 1702), so two concurrent reads
 * never link to the same predecessor and fork the chain; the statement after the lock sees what
 * the previous holder committed (READ COMMITTED). `p_canonical` is the record as canonical JSON,
 * made by the caller from the same values (the verifier rebuilds it from the columns).
 */
const appendAccessLogFunction = `
CREATE FUNCTION append_access_log(
  p_at timestamptz, p_actor_id text, p_actor_roles text[], p_action text, p_resource text,
  p_patient_id text, p_outcome text, p_status_code integer, p_ip text, p_user_agent text,
  p_request_id text, p_canonical text,
  OUT o_id bigint, OUT o_hash text
) LANGUAGE plpgsql AS $$
DECLARE
  v_prev text;
BEGIN
  PERFORM pg_advisory_xact_lock(1703, 0);
  SELECT a.hash INTO v_prev FROM access_log a ORDER BY a.id DESC LIMIT 1;
  v_prev := coalesce(v_prev, repeat('0', 64));
  INSERT INTO access_log (at, actor_id, actor_roles, action, resource, patient_id, outcome, status_code, ip, user_agent, request_id, prev_hash, hash)
  VALUES (p_at, p_actor_id, p_actor_roles, p_action, p_resource, p_patient_id, p_outcome, p_status_code, p_ip, p_user_agent, p_request_id,
          v_prev, encode(sha256(convert_to(v_prev || p_canonical, 'UTF8')), 'hex'))
  RETURNING id, hash INTO o_id, o_hash;
END $$`;

/**
 * `bookable_app`: what the service needs and no more on the two audit tables. Only where the
 * migrating user may create roles (a managed database may not let it); roles are cluster-wide,
 * so a second database on the same server finds it already there.
 */
const applicationRole = `
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
    RAISE NOTICE 'bookable_app not created: % may not create roles', current_user;
    RETURN;
  END IF;
  BEGIN
    CREATE ROLE bookable_app NOLOGIN;
  EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
  END;
  EXECUTE format('GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO bookable_app', current_database());
  GRANT USAGE ON SCHEMA public TO bookable_app;
  GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO bookable_app;
  REVOKE UPDATE, DELETE, TRUNCATE ON events, access_log FROM bookable_app;
  GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO bookable_app;
  -- Tables of later migrations (run as the owner) are the service's to write, like these ones.
  ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO bookable_app;
  ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO bookable_app;
END $$`;
