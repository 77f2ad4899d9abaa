import { sql, type Kysely, type Migration } from 'kysely';

/**
 * Migration `0710_subject_keys_kept`: a data key's row, once stored, only ever becomes a
 * tombstone. Events are sealed only after their subject's row exists, and erasure keeps it, so
 * a row gone means a lost key (`PersonalDataVault` reads its events as unreadable, not erased):
 * `bookable_app` may no longer DELETE or TRUNCATE the table, which nothing of the service did.
 * It keeps UPDATE, which erasure needs (`PgSubjectKeyStore.destroy`), and a trigger lets an
 * UPDATE do only what erasure does: clear the key (SK001 otherwise). So the service's login
 * cannot swap a key, move it to another subject, or bring an erased one back; it can still erase
 * without `SubjectErased`, as erasure itself must be able to.
 */
export const subjectKeysKeptMigration: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`
      CREATE FUNCTION subject_keys_only_erased() RETURNS trigger LANGUAGE plpgsql
      SET search_path = pg_catalog, public, pg_temp AS $$
      BEGIN
        IF NEW.subject_id IS DISTINCT FROM OLD.subject_id OR NEW.created_at IS DISTINCT FROM OLD.created_at OR NEW.wrapped_key IS NOT NULL THEN
          RAISE EXCEPTION 'subject_keys: a key row may only become a tombstone; % of % refused', TG_OP, OLD.subject_id USING ERRCODE = 'SK001';
        END IF;
        RETURN NEW;
      END $$`.execute(db);
    await sql`
      CREATE TRIGGER subject_keys_only_erased BEFORE UPDATE ON subject_keys
      FOR EACH ROW EXECUTE FUNCTION subject_keys_only_erased()`.execute(db);
    await sql`
      DO $$
      BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bookable_app') THEN
          REVOKE DELETE, TRUNCATE ON subject_keys FROM bookable_app;
        END IF;
      END $$`.execute(db);
  },

  async down(db: Kysely<unknown>) {
    await sql`
      DO $$
      BEGIN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bookable_app') THEN
          GRANT DELETE ON subject_keys TO bookable_app;
        END IF;
      END $$`.execute(db);
    await sql`DROP TRIGGER IF EXISTS subject_keys_only_erased ON subject_keys`.execute(db);
    await sql`DROP FUNCTION IF EXISTS subject_keys_only_erased()`.execute(db);
  },
};
