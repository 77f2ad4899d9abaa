import { sql, type Kysely, type Transaction } from 'kysely';
import { aggregates } from '../../application/aggregates/aggregates.js';
import type { RecordedEvent } from '../../application/ports/event-store.js';
import { assertNever } from '../../domain/shared/decider.js';
import { erasedPlaceholder } from '../../domain/shared/personal-data.js';
import { userRoleSchema, type UserEvent } from '../../domain/user/user.events.js';
import { decodeKnown, distinct, foldRows } from '../shared/batch-fold.js';
import { withinParameterLimit } from '../shared/parameter-limit.js';
import { defineProjection } from '../runtime/projection.js';
import { usersProjectionName, type UserRow, type UsersTables } from './users.table.js';

const codec = aggregates.user.codec;

async function migrate(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('users')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('roles', sql`text[]`, (c) => c.notNull())
    .addColumn('registered_at', 'timestamptz', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .execute();
  // The doctors list: users holding the DOCTOR role, by name.
  await db.schema.createIndex('users_doctors_idx').on('users').columns(['name', 'user_id']).where(sql<boolean>`'DOCTOR' = any(roles)`).execute();
}

/** Roles in one canonical order, so that equal sets are equal rows. */
const canonical = (roles: Iterable<UserRow['roles'][number]>) => userRoleSchema.options.filter((role) => new Set(roles).has(role));

function evolve(row: UserRow | undefined, event: UserEvent, recorded: RecordedEvent): UserRow | undefined {
  const version = recorded.revision;
  switch (event.type) {
    case 'UserRegistered': {
      const { userId, email, name, roles } = event.data;
      return { user_id: userId, email, name, roles: canonical(roles), registered_at: recorded.recordedAt, version };
    }
    case 'RolesGranted':
      return row && { ...row, roles: canonical([...row.roles, ...event.data.roles]), version };
    case 'RolesRevoked': {
      const revoked = new Set(event.data.roles);
      return row && { ...row, roles: row.roles.filter((role) => !revoked.has(role)), version };
    }
    case 'SubjectErased':
      return row && { ...row, email: erasedPlaceholder, name: erasedPlaceholder, version };
    default:
      return assertNever(event);
  }
}

async function apply(trx: Transaction<UsersTables>, events: readonly RecordedEvent[]): Promise<void> {
  const decoded = decodeKnown(codec, events);
  if (decoded.length === 0) return;
  const ids = distinct(decoded.map(({ event }) => event.data.userId));
  const loaded = await trx.selectFrom('users').selectAll().where('user_id', 'in', ids).execute();
  const rows = foldRows({ events: decoded, loaded, keyOfRow: (row) => row.user_id, keyOfEvent: (event) => event.data.userId, evolve });
  if (rows.length === 0) return;
  for (const run of withinParameterLimit(rows)) {
    await trx
      .insertInto('users')
      .values(run)
      .onConflict((oc) =>
        oc
          .column('user_id')
          .doUpdateSet((eb) => ({ email: eb.ref('excluded.email'), name: eb.ref('excluded.name'), roles: eb.ref('excluded.roles'), version: eb.ref('excluded.version') }))
          .where('users.version', '<', sql<number>`excluded.version`),
      )
      .execute();
  }
}

/** User profiles and roles (`GET /v1/users/me`), and through them the doctors' names. */
export const usersProjection = defineProjection<UsersTables>({
  name: usersProjectionName,
  version: 2,
  eventTypes: codec.eventTypes,
  migrate,
  apply,
});
