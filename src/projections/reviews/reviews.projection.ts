import { sql, type Kysely, type Transaction } from 'kysely';
import { aggregates } from '../../application/aggregates/aggregates.js';
import type { RecordedEvent } from '../../application/ports/event-store.js';
import type { ReviewEvent } from '../../domain/review/review.events.js';
import { assertNever } from '../../domain/shared/decider.js';
import { erasedPlaceholder } from '../../domain/shared/personal-data.js';
import { subjectErasedType } from '../../domain/user/user.events.js';
import { decodeKnown, distinct, foldRows } from '../shared/batch-fold.js';
import { withinParameterLimit } from '../shared/parameter-limit.js';
import { erasedSubjects } from '../shared/subject-erasures.js';
import { defineProjection } from '../runtime/projection.js';
import { reviewsProjectionName, type ReviewRow, type ReviewsTables } from './reviews.table.js';

const codec = aggregates.review.codec;

async function migrate(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('reviews')
    .addColumn('booking_id', 'text', (c) => c.primaryKey())
    .addColumn('listing_id', 'text', (c) => c.notNull())
    .addColumn('author_id', 'text', (c) => c.notNull())
    .addColumn('rating', 'integer', (c) => c.notNull())
    .addColumn('comment', 'text', (c) => c.notNull())
    .addColumn('submitted_at', 'timestamptz', (c) => c.notNull())
    .addColumn('edited_at', 'timestamptz')
    .addColumn('hidden', 'boolean', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .execute();
  // A listing's visible reviews, newest first; also what its rating average and count read.
  await db.schema
    .createIndex('reviews_listing_visible_idx')
    .on('reviews')
    .columns(['listing_id', 'submitted_at desc', 'booking_id desc'])
    .where(sql.ref('hidden'), '=', false)
    .execute();
}

function evolve(row: ReviewRow | undefined, event: ReviewEvent, recorded: RecordedEvent): ReviewRow | undefined {
  const version = recorded.revision;
  switch (event.type) {
    case 'ReviewSubmitted': {
      const d = event.data;
      const submittedAt = new Date(d.submittedAt);
      return { booking_id: d.bookingId, listing_id: d.listingId, author_id: d.authorId, rating: d.rating, comment: d.comment, submitted_at: submittedAt, edited_at: null, hidden: false, version };
    }
    case 'ReviewEdited':
      return row && { ...row, rating: event.data.rating, comment: event.data.comment, edited_at: recorded.recordedAt, version };
    case 'ReviewHidden':
      return row && { ...row, hidden: true, version };
    default:
      return assertNever(event);
  }
}

async function apply(trx: Transaction<ReviewsTables>, events: readonly RecordedEvent[]): Promise<void> {
  await upsertReviews(trx, events);
  const erased = erasedSubjects(events);
  if (erased.length > 0) await trx.updateTable('reviews').set({ comment: erasedPlaceholder }).where('author_id', 'in', erased).execute();
}

async function upsertReviews(trx: Transaction<ReviewsTables>, events: readonly RecordedEvent[]): Promise<void> {
  const decoded = decodeKnown(codec, events);
  if (decoded.length === 0) return;
  const ids = distinct(decoded.map(({ event }) => event.data.bookingId));
  const loaded = await trx.selectFrom('reviews').selectAll().where('booking_id', 'in', ids).execute();
  const rows = foldRows({ events: decoded, loaded, keyOfRow: (row) => row.booking_id, keyOfEvent: (event) => event.data.bookingId, evolve });
  if (rows.length === 0) return;
  for (const run of withinParameterLimit(rows)) {
    await trx
      .insertInto('reviews')
      .values(run)
      .onConflict((oc) =>
        oc
          .column('booking_id')
          .doUpdateSet((eb) => ({
            rating: eb.ref('excluded.rating'),
            comment: eb.ref('excluded.comment'),
            edited_at: eb.ref('excluded.edited_at'),
            hidden: eb.ref('excluded.hidden'),
            version: eb.ref('excluded.version'),
          }))
          .where('reviews.version', '<', sql<number>`excluded.version`),
      )
      .execute();
  }
}

/** Reviews per listing, and through them each listing's rating. */
export const reviewsProjection = defineProjection<ReviewsTables>({
  name: reviewsProjectionName,
  version: 2,
  eventTypes: [...codec.eventTypes, subjectErasedType],
  migrate,
  apply,
});
