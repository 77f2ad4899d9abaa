import { sql, type Kysely } from 'kysely';
import { z } from 'zod';
import { paymentProcessEventTypes, paymentProcessName } from '../../src/application/process-managers/payment.process.js';
import { comparePositions, parsePosition, START, type Position } from '../../src/application/ports/position.js';
import { listCheckpoints, readActivePositions } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import { readSchema } from '../../src/projections/runtime/projection.js';
import { tablesHash } from '../../tests/support/read-model-tables.js';
import { percentOf } from '../../src/domain/shared/money.js';
import type { BookingRecord, Ledger } from './soak-load.js';
import { sleep } from '../../src/application/sleep.js';

// What the soak verifies once the load has stopped, straight from PostgreSQL: the event log
// against the ledger of accepted commands, the contended resources, and each read model against
// a fresh rebuild of itself.

export type Check = { readonly name: string; readonly ok: boolean; readonly summary: string; readonly problems: readonly string[] };

export function checkOf(name: string, summary: string, problems: readonly string[]): Check {
  return { name, ok: problems.length === 0, summary, problems };
}

const fmt = (n: number) => n.toLocaleString('en-US');

type PositionRow = { commit: string; prepare: string };
const toPosition = (row: PositionRow | undefined): Position => (row ? { commit: BigInt(row.commit), prepare: BigInt(row.prepare) } : START);

/** The position of the last event in the log. */
export async function logHead(db: Kysely<unknown>): Promise<Position> {
  const { rows } = await sql<PositionRow>`
    select transaction_id::text as commit, global_position::text as prepare from events
    order by transaction_id desc, global_position desc limit 1`.execute(db);
  return toPosition(rows[0]);
}

/** True once every active read model has processed `position`. */
export async function projectionsReached(db: Kysely<unknown>, names: readonly string[], position: Position): Promise<boolean> {
  const positions = await readActivePositions(db, names);
  return names.every((name) => {
    const reached = positions.get(name);
    return reached !== undefined && comparePositions(reached, position) >= 0;
  });
}

/** The payment process manager has handled every event it follows. */
async function paymentProcessDone(db: Kysely<unknown>): Promise<boolean> {
  const last = await sql<PositionRow>`
    select transaction_id::text as commit, global_position::text as prepare from events
    where event_type = any(${paymentProcessEventTypes}) order by transaction_id desc, global_position desc limit 1`.execute(db);
  if (!last.rows[0]) return true;
  const saved = await sql<PositionRow>`
    select position_commit::text as commit, position_prepare::text as prepare from process_checkpoints where process_name = ${paymentProcessName}`.execute(db);
  return saved.rows[0] !== undefined && comparePositions(toPosition(saved.rows[0]), toPosition(last.rows[0])) >= 0;
}

/**
 * Waits until nothing is left to do: every read model and the payment process at the head of a
 * log that has stopped moving, and no rebuild under way. Returns what is still wrong at the deadline.
 */
export async function settle(db: Kysely<unknown>, names: readonly string[], timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let previous: Position | undefined;
  for (;;) {
    const head = await logHead(db);
    const checkpoints = await listCheckpoints(db);
    const failed = checkpoints.filter((row) => row.status === 'failed').map((row) => `${row.name} generation ${row.generation} failed: ${row.lastFailure?.error ?? '?'}`);
    if (failed.length > 0) return failed;
    const rebuilding = checkpoints.filter((row) => row.status === 'rebuilding');
    const caughtUp = (await projectionsReached(db, names, head)) && (await paymentProcessDone(db));
    const still = previous !== undefined && comparePositions(previous, head) === 0;
    if (caughtUp && still && rebuilding.length === 0) return [];
    if (Date.now() > deadline) {
      return [`not settled after ${timeoutMs / 1000} s: caught up ${caughtUp}, log still ${still}, rebuilding ${rebuilding.map((row) => row.name).join(', ') || 'none'}`];
    }
    previous = head;
    await sleep(500);
  }
}

/**
 * Accepted commands whose reported position is not where their effects end: their stream's event
 * at the reported version, or a later event the same request appended after it (the dates, slot
 * and time a cancellation gives back), which a reader waiting on the position must see too.
 */
async function misplacedResults(db: Kysely<unknown>, ledger: Ledger): Promise<string[]> {
  const positions = ledger.accepted.map((command) => parsePosition(command.position));
  const commits = positions.map((position) => (position ?? START).commit.toString());
  const prepares = positions.map((position) => (position ?? START).prepare.toString());
  const streams = ledger.accepted.map((command) => command.streamId);
  const versions = ledger.accepted.map((command) => String(command.version ?? -1));
  const { rows } = await sql<{ i: string; stream_id: string | null; revision: string | null; later_step: boolean }>`
    select a.i::text as i, e.stream_id, e.revision::text as revision,
           coalesce(main.metadata->>'requestId' = e.metadata->>'requestId'
                    and (main.transaction_id, main.global_position) < (e.transaction_id, e.global_position), false) as later_step
    from unnest(${commits}::text[], ${prepares}::bigint[], ${streams}::text[], ${versions}::bigint[]) with ordinality as a(commit, prepare, stream_id, version, i)
    left join events e on e.transaction_id = a.commit::xid8 and e.global_position = a.prepare
    left join events main on main.stream_id = a.stream_id and main.revision = a.version`.execute(db);
  const problems: string[] = [];
  for (const row of rows) {
    const command = ledger.accepted[Number(row.i) - 1];
    if (!command) continue;
    const versionMatches = command.version === undefined || row.revision === String(command.version);
    const atItsEvent = row.stream_id === command.streamId && versionMatches;
    if (!atItsEvent && !(command.version !== undefined && row.later_step)) {
      problems.push(`${command.route} answered ${command.streamId}@${command.version ?? '?'} at ${command.position}; the log has ${row.stream_id ?? 'nothing'}@${row.revision ?? '?'} there`);
    }
  }
  return problems;
}

type Counts = { of(streamId: string, type: string, subject?: string): number };

/** How many events of each type each stream holds, also per booking, appointment or refund they name. */
async function eventCounts(db: Kysely<unknown>): Promise<Counts> {
  const { rows } = await sql<{ stream_id: string; event_type: string; subject: string; n: number }>`
    select stream_id, event_type, coalesce(data->>'refundId', data->>'appointmentId', data->>'bookingId', '') as subject, count(*)::int as n
    from events group by 1, 2, 3`.execute(db);
  const byType = new Map<string, number>();
  const bySubject = new Map<string, number>();
  for (const row of rows) {
    const key = `${row.stream_id}\u0000${row.event_type}`;
    byType.set(key, (byType.get(key) ?? 0) + row.n);
    bySubject.set(`${key}\u0000${row.subject}`, row.n);
  }
  return {
    of: (streamId, type, subject) =>
      subject === undefined ? (byType.get(`${streamId}\u0000${type}`) ?? 0) : (bySubject.get(`${streamId}\u0000${type}\u0000${subject}`) ?? 0),
  };
}

/** A count of events, exactly or at most (`atMost`): an effect that may or may not have come before a later command made it moot. */
type Expectation = readonly [streamId: string, type: string, subject: string | undefined, expected: number, atMost?: 'at most'];

/** Paid, as far as the soak's user can tell: a payment of the booking had its webhook accepted. */
function isPaid(ledger: Ledger, booking: BookingRecord): boolean {
  return booking.paymentIds.some((paymentId) => ledger.payments.get(paymentId)?.webhookAccepted === true);
}

/**
 * The events each accepted command must have left, once each, given what else happened to its
 * booking or appointment. A booking its consumer did not cancel is never cancelled, and keeps its
 * dates to the end: the soak's holds outlast the run. Should one run out all the same (`expired`,
 * the bookings with a BookingExpired), the hold-expiry process expires it and releases its dates,
 * once each, and it is never paid (its money, if it came, goes back in full: see `refundsOwed`).
 * A cancelled booking that was paid may have been marked paid, its dates booked and the booking
 * confirmed before the cancellation, or not (the payment process had not got to it yet): once at most.
 */
function expectations(ledger: Ledger, expired: ReadonlySet<string>): Expectation[] {
  const expected: Expectation[] = [];
  for (const [id, booking] of ledger.bookings) {
    const stream = `booking-${id}`;
    const calendar = `listingCalendar-${booking.listingId}`;
    const lapsed = !booking.cancelled && expired.has(id);
    expected.push([stream, 'BookingRequested', undefined, 1], [calendar, 'DatesHeld', id, 1]);
    expected.push([stream, 'BookingCancelled', undefined, booking.cancelled ? 1 : 0], [stream, 'BookingExpired', undefined, lapsed ? 1 : 0]);
    expected.push([calendar, 'DatesReleased', id, booking.cancelled || lapsed ? 1 : 0]);
    const paid = isPaid(ledger, booking);
    if (booking.cancelled && paid) {
      expected.push([stream, 'BookingPaid', undefined, 1, 'at most'], [stream, 'BookingConfirmed', undefined, 1, 'at most'], [calendar, 'DatesBooked', id, 1, 'at most']);
    } else {
      const firm = paid && !booking.cancelled && !lapsed ? 1 : 0;
      expected.push([stream, 'BookingPaid', undefined, firm], [stream, 'BookingConfirmed', undefined, firm], [calendar, 'DatesBooked', id, firm]);
    }
  }
  for (const [paymentId, payment] of ledger.payments) {
    expected.push([`payment-${paymentId}`, 'PaymentInitiated', undefined, 1]);
    if (payment.webhookAccepted) expected.push([`payment-${paymentId}`, 'PaymentSucceeded', undefined, 1]);
  }
  for (const [id, appointment] of ledger.appointments) {
    const stream = `appointment-${id}`;
    const schedule = `doctorSchedule-${appointment.doctorId}`;
    const agenda = `patientAgenda-${appointment.patientId}`;
    // SlotMoved and TimeMoved are not here: a reschedule refused after they moved moves them back (see movedSlots, movedTimes).
    expected.push([stream, 'AppointmentScheduled', undefined, 1], [schedule, 'SlotBooked', id, 1], [agenda, 'TimeReserved', id, 1]);
    expected.push([stream, 'AppointmentRescheduled', undefined, appointment.reschedules]);
    const cancelled = appointment.cancelled ? 1 : 0;
    expected.push([stream, 'AppointmentCancelled', undefined, cancelled], [schedule, 'SlotReleased', id, cancelled], [agenda, 'TimeReleased', id, cancelled]);
  }
  return expected;
}

/** The counts that differ from what was expected. */
function wrongCounts(counts: Counts, expected: readonly Expectation[]): string[] {
  return expected
    .filter(([stream, type, subject, n, atMost]) => (atMost ? counts.of(stream, type, subject) > n : counts.of(stream, type, subject) !== n))
    .map(([stream, type, subject, n, atMost]) => `${stream}: ${type}${subject ? ` for ${subject}` : ''} ×${counts.of(stream, type, subject)}, expected ${atMost ? 'at most ' : ''}×${n}`);
}

/** Bookings whose hold ran out (the log has a BookingExpired), and the reason each booking's dates were last released for. */
async function releases(db: Kysely<unknown>): Promise<{ expired: Set<string>; reasons: Map<string, { calendar: string; reason: string }> }> {
  const { rows } = await sql<{ stream_id: string; event_type: string; booking_id: string; reason: string | null }>`
    select stream_id, event_type, data->>'bookingId' as booking_id, data->>'reason' as reason from events
    where (stream_id like 'booking-%' and event_type = 'BookingExpired') or (stream_id like 'listingCalendar-%' and event_type = 'DatesReleased')
    order by transaction_id, global_position`.execute(db);
  const expired = new Set(rows.filter((row) => row.event_type === 'BookingExpired').map((row) => row.booking_id));
  const reasons = new Map(rows.filter((row) => row.event_type === 'DatesReleased').map((row) => [row.booking_id, { calendar: row.stream_id, reason: row.reason ?? '?' }]));
  return { expired, reasons };
}

/** Dates given back for another reason than the booking's end: `cancelled` for a cancelled booking, `expired` for one whose hold ran out. */
function misreleasedDates(ledger: Ledger, { expired, reasons }: Awaited<ReturnType<typeof releases>>): string[] {
  const problems: string[] = [];
  for (const [id, booking] of ledger.bookings) {
    const released = reasons.get(id);
    const expected = booking.cancelled ? 'cancelled' : expired.has(id) ? 'expired' : undefined;
    if (released && expected && released.reason !== expected) problems.push(`${released.calendar}: DatesReleased for ${id} as ${released.reason}, expected as ${expected}`);
  }
  return problems;
}

const refundData = z.object({ refundId: z.string(), amount: z.number().optional() });
const capturedData = z.object({ amount: z.number().optional(), receivedAmount: z.number().optional() });
const cancellationData = z.object({ bookingId: z.string(), refundPercent: z.number(), refundAmount: z.number() });

type PaymentMoney = { captured: number; readonly refunds: Map<string, number>; readonly failed: Set<string> };

/** What each payment stream captured and was asked to refund, and each booking's cancellation terms, from the log. */
async function moneyInLog(db: Kysely<unknown>) {
  const { rows } = await sql<{ stream_id: string; event_type: string; data: unknown }>`
    select stream_id, event_type, data from events
    where (stream_id like 'payment-%' and event_type in ('PaymentSucceeded', 'PaymentMismatch', 'RefundRequested', 'RefundFailed'))
       or (stream_id like 'booking-%' and event_type = 'BookingCancelled')
    order by transaction_id, global_position`.execute(db);
  const payments = new Map<string, PaymentMoney>();
  const cancellations = new Map<string, z.infer<typeof cancellationData>>();
  for (const row of rows) {
    if (row.event_type === 'BookingCancelled') {
      const cancelled = cancellationData.safeParse(row.data);
      if (cancelled.success) cancellations.set(cancelled.data.bookingId, cancelled.data);
      continue;
    }
    const payment = payments.get(row.stream_id) ?? { captured: 0, refunds: new Map<string, number>(), failed: new Set<string>() };
    payments.set(row.stream_id, payment);
    const refund = refundData.safeParse(row.data);
    const captured = capturedData.safeParse(row.data);
    if (row.event_type === 'RefundRequested' && refund.success) payment.refunds.set(refund.data.refundId, refund.data.amount ?? 0);
    else if (row.event_type === 'RefundFailed' && refund.success) payment.failed.add(refund.data.refundId);
    else if (captured.success) payment.captured = Math.max(payment.captured, captured.data.amount ?? captured.data.receivedAmount ?? 0);
  }
  return { payments, cancellations };
}

/**
 * Every payment whose webhook was accepted has exactly the refunds its booking's fate calls for:
 * cancelled by its consumer, one of the amount the cancellation set (its `refundAmount`; the
 * policy's `refundPercent` of what was captured when the cancellation came before the payment
 * process had marked the booking paid, which then refunds by the same policy), none if that is 0;
 * run out unpaid, one of all of it; otherwise none. And no payment of the log has more asked back,
 * refunds that failed aside, than it captured.
 */
async function refundsOwed(db: Kysely<unknown>, ledger: Ledger, expired: ReadonlySet<string>): Promise<string[]> {
  const { payments, cancellations } = await moneyInLog(db);
  const fmtAll = (amounts: readonly number[]) => amounts.map(fmt).join(', ');
  const problems: string[] = [];
  for (const [stream, payment] of payments) {
    const asked = [...payment.refunds].filter(([refundId]) => !payment.failed.has(refundId)).reduce((sum, [, amount]) => sum + amount, 0);
    const failed = payment.failed.size > 0 ? ` (not counting ${payment.failed.size} failed)` : '';
    if (asked > payment.captured) problems.push(`${stream}: refunds of ${fmt(asked)} requested${failed} exceed the ${fmt(payment.captured)} captured`);
  }
  for (const [paymentId, { bookingId, webhookAccepted }] of ledger.payments) {
    const booking = ledger.bookings.get(bookingId);
    if (!webhookAccepted || !booking) continue;
    const stream = `payment-${paymentId}`;
    const money = payments.get(stream);
    const captured = money?.captured ?? 0;
    const cancellation = cancellations.get(bookingId);
    let owed = 0;
    let why = `booking ${bookingId}, not cancelled`;
    if (booking.cancelled && cancellation) {
      owed = cancellation.refundAmount > 0 ? cancellation.refundAmount : percentOf(captured, cancellation.refundPercent);
      why = `booking ${bookingId} cancelled at ${cancellation.refundPercent} % of ${fmt(captured)}`;
    } else if (booking.cancelled) continue; // No cancellation in the log: the counts say so.
    else if (expired.has(bookingId)) {
      owed = captured;
      why = `booking ${bookingId}, its hold run out before it was paid`;
    }
    const amounts = [...(money?.refunds.values() ?? [])];
    const right = owed > 0 ? amounts.length === 1 && amounts[0] === owed : amounts.length === 0;
    if (!right) problems.push(`${stream}: refunds requested ×${amounts.length} (${fmtAll(amounts)}) for ${why}, expected ${owed > 0 ? `one of ${fmt(owed)}` : 'none'}`);
  }
  return problems;
}

/**
 * Each appointment's slot moved once per accepted reschedule, plus a move and its restoring for
 * each one refused after the slot had moved; and it ends where the last accepted command put it.
 */
async function movedSlots(db: Kysely<unknown>, ledger: Ledger, counts: Counts): Promise<string[]> {
  const { rows } = await sql<{ appointment_id: string; event_type: string; start: string | null }>`
    select distinct on (data->>'appointmentId') data->>'appointmentId' as appointment_id, event_type, data->>'start' as start
    from events where stream_id like 'doctorSchedule-%' and event_type in ('SlotBooked', 'SlotMoved', 'SlotRestored', 'SlotMoveCompleted', 'SlotReleased')
    order by data->>'appointmentId', revision desc`.execute(db);
  const last = new Map(rows.map((row) => [row.appointment_id, row]));
  const problems: string[] = [];
  for (const [id, appointment] of ledger.appointments) {
    // A reschedule holds the new slot and completes the move once the appointment moved (before, one SlotMoved).
    const moves = counts.of(`doctorSchedule-${appointment.doctorId}`, 'SlotMoved', id) + counts.of(`doctorSchedule-${appointment.doctorId}`, 'SlotMoveCompleted', id);
    const restores = counts.of(`doctorSchedule-${appointment.doctorId}`, 'SlotRestored', id);
    if (moves - restores !== appointment.reschedules) {
      problems.push(`appointment ${id}: its slot moved ${moves} times and was restored ${restores} times for ${appointment.reschedules} accepted reschedules`);
    }
    const final = last.get(id);
    const released = final?.event_type === 'SlotReleased';
    const where = released ? 'released' : final?.start ? new Date(final.start).toISOString() : 'nowhere';
    const expected = appointment.cancelled ? 'released' : new Date(appointment.start).toISOString();
    if (where !== expected) problems.push(`appointment ${id}: its slot ends ${where}, expected ${expected}`);
  }
  return problems;
}

const timeData = z.object({ appointmentId: z.string(), start: z.string().optional() });

/**
 * Each patient's time moved once per accepted reschedule, away from where the appointment is;
 * a reschedule refused after it moved the time (the appointment's own append refused) moves it
 * back, to where the appointment is, as the hold-expiry process does for one whose request died.
 * A refusal before the time moved (the patient's time taken meanwhile) moves nothing. It ends
 * where the last accepted command put the appointment, or released if it was cancelled.
 */
async function movedTimes(db: Kysely<unknown>, ledger: Ledger): Promise<string[]> {
  const { rows } = await sql<{ event_type: string; data: unknown }>`
    select event_type, data from events
    where (stream_id like 'patientAgenda-%' and event_type in ('TimeReserved', 'TimeMoved', 'TimeReleased'))
       or (stream_id like 'appointment-%' and event_type in ('AppointmentScheduled', 'AppointmentRescheduled'))
    order by transaction_id, global_position`.execute(db);
  const appointmentAt = new Map<string, number>();
  const timeAt = new Map<string, number | 'released'>();
  const moves = new Map<string, { away: number; back: number }>();
  for (const row of rows) {
    const parsed = timeData.safeParse(row.data);
    if (!parsed.success) continue;
    const { appointmentId, start } = parsed.data;
    const at = start === undefined ? Number.NaN : Date.parse(start);
    if (row.event_type === 'AppointmentScheduled' || row.event_type === 'AppointmentRescheduled') appointmentAt.set(appointmentId, at);
    else if (row.event_type === 'TimeReleased') timeAt.set(appointmentId, 'released');
    else {
      if (row.event_type === 'TimeMoved') {
        const moved = moves.get(appointmentId) ?? { away: 0, back: 0 };
        if (appointmentAt.get(appointmentId) === at) moved.back += 1;
        else moved.away += 1;
        moves.set(appointmentId, moved);
      }
      timeAt.set(appointmentId, at);
    }
  }
  const problems: string[] = [];
  for (const [id, appointment] of ledger.appointments) {
    const { away, back } = moves.get(id) ?? { away: 0, back: 0 };
    if (away - back !== appointment.reschedules) {
      problems.push(`appointment ${id}: its patient's time moved ${away} times and back ${back} times for ${appointment.reschedules} accepted reschedules`);
    }
    const final = timeAt.get(id);
    const where = final === undefined ? 'nowhere' : final === 'released' ? 'released' : new Date(final).toISOString();
    const expected = appointment.cancelled ? 'released' : new Date(appointment.start).toISOString();
    if (where !== expected) problems.push(`appointment ${id}: its patient's time ends ${where}, expected ${expected}`);
  }
  return problems;
}

/** Every refund the log asks for has exactly one outcome: the payment process finished its work, once. */
async function unfinishedRefunds(db: Kysely<unknown>): Promise<string[]> {
  const { rows } = await sql<{ stream_id: string; refund_id: string; requested: number; outcomes: number }>`
    select stream_id, data->>'refundId' as refund_id,
           count(*) filter (where event_type = 'RefundRequested')::int as requested,
           count(*) filter (where event_type in ('RefundSucceeded', 'RefundFailed'))::int as outcomes
    from events where stream_id like 'payment-%' and event_type in ('RefundRequested', 'RefundSucceeded', 'RefundFailed')
    group by 1, 2 having count(*) filter (where event_type = 'RefundRequested') <> 1
                     or count(*) filter (where event_type in ('RefundSucceeded', 'RefundFailed')) <> 1`.execute(db);
  return rows.map((row) => `${row.stream_id} refund ${row.refund_id}: requested ×${row.requested}, outcomes ×${row.outcomes}`);
}

/**
 * Dates, slots and patients' time still held at the end for a booking or appointment the log has
 * no stream for: a request that took the contended resource and then failed or was refused, and
 * left it blocking others until some sweep notices. The ledger sees accepted commands only, so
 * this looks at the log itself.
 */
async function orphanHolds(db: Kysely<unknown>): Promise<string[]> {
  const { rows } = await sql<{ stream_id: string; holder: string; event_type: string }>`
    with last_per_holder as (
      select distinct on (stream_id, holder) stream_id, holder, event_type
      from (select stream_id, revision, event_type, coalesce(data->>'bookingId', data->>'appointmentId') as holder from events
            where (stream_id like 'listingCalendar-%' and event_type in ('DatesHeld', 'DatesBooked', 'DatesReleased'))
               or (stream_id like 'doctorSchedule-%' and event_type in ('SlotBooked', 'SlotMoved', 'SlotRestored', 'SlotReleased'))
               or (stream_id like 'patientAgenda-%' and event_type in ('TimeReserved', 'TimeMoved', 'TimeReleased'))) held
      order by stream_id, holder, revision desc)
    select h.stream_id, h.holder, h.event_type from last_per_holder h
    where h.event_type not in ('DatesReleased', 'SlotReleased', 'TimeReleased')
      and not exists (select 1 from events owner
                      where owner.stream_id = (case when h.stream_id like 'listingCalendar-%' then 'booking-' else 'appointment-' end) || h.holder)
    order by 1, 2 limit 20`.execute(db);
  return rows.map((row) => `${row.stream_id}: ${row.event_type} for ${row.holder} still holds, and no such ${row.stream_id.startsWith('listingCalendar-') ? 'booking' : 'appointment'} exists`);
}

/**
 * Each accepted command's events are in the log exactly once: at the position it answered, with
 * the events its outcome implies (and none its outcome rules out: a cancellation nobody asked
 * for, dates or a patient's time given back of a booking or appointment that still stands); each
 * paid booking refunded as its fate calls for, and no payment refunded beyond what it captured;
 * no event id twice; every stream's revisions 0..n without a gap; and nothing held for a booking
 * or appointment that never came to be.
 */
export async function checkEventsExactlyOnce(db: Kysely<unknown>, ledger: Ledger): Promise<Check> {
  const duplicates = await sql<{ id: string; n: number }>`
    select event_id::text as id, count(*)::int as n from events group by event_id having count(*) > 1 limit 20`.execute(db);
  const gaps = await sql<{ stream_id: string; n: number; first: string; last: string }>`
    select stream_id, count(*)::int as n, min(revision)::text as first, max(revision)::text as last
    from events group by stream_id having min(revision) <> 0 or max(revision) <> count(*) - 1 limit 20`.execute(db);
  const totals = await sql<{ events: number; streams: number }>`select count(*)::int as events, count(distinct stream_id)::int as streams from events`.execute(db);
  const counts = await eventCounts(db);
  const released = await releases(db);
  const problems = [
    ...duplicates.rows.map((row) => `event id ${row.id} appended ${row.n} times`),
    ...gaps.rows.map((row) => `${row.stream_id}: ${row.n} events with revisions ${row.first}..${row.last}`),
    ...(await misplacedResults(db, ledger)),
    ...wrongCounts(counts, expectations(ledger, released.expired)),
    ...misreleasedDates(ledger, released),
    ...(await movedSlots(db, ledger, counts)),
    ...(await movedTimes(db, ledger)),
    ...(await refundsOwed(db, ledger, released.expired)),
    ...(await unfinishedRefunds(db)),
    ...(await orphanHolds(db)),
  ];
  const { events = 0, streams = 0 } = totals.rows[0] ?? {};
  const paidAndCancelled = [...ledger.bookings.values()].filter((booking) => booking.cancelled && isPaid(ledger, booking)).length;
  const summary =
    `${fmt(ledger.accepted.length)} accepted commands (${fmt(ledger.bookings.size)} bookings, ${fmt(paidAndCancelled)} of them paid and cancelled, ` +
    `${fmt(ledger.payments.size)} payments, ${fmt(ledger.appointments.size)} appointments) against ${fmt(events)} events in ${fmt(streams)} streams`;
  return checkOf('every accepted command\'s events present exactly once', summary, problems);
}

/** The most of the soak's requests the service may shed as `overloaded` (503) for the run to count. */
export const overloadedLimit = 0.05;

/**
 * The load did what it is there to do, so that checks of what it left have something to check: a
 * payment its webhook got accepted, a paid booking and an appointment cancelled, a reschedule
 * accepted, and one refused for the patient's time, lost to the same patient's booking raced
 * beside it (the race that once double-booked a doctor). Floors, not figures scaled to the run: a
 * one-minute run has some 300 webhook deliveries and 100 reschedules, and one where nothing of a
 * kind went through must fail, not pass every check vacuously. And the service took the load: at
 * most `overloadedLimit` of the requests shed as overloaded.
 */
export function checkLoadExercised(ledger: Ledger, traffic: { readonly requests: number; readonly overloaded: number }): Check {
  const paid = [...ledger.payments.values()].filter((payment) => payment.webhookAccepted).length;
  const bookings = [...ledger.bookings.values()];
  const paidAndCancelled = bookings.filter((booking) => booking.cancelled && isPaid(ledger, booking)).length;
  const appointments = [...ledger.appointments.values()];
  const cancelledAppointments = appointments.filter((appointment) => appointment.cancelled).length;
  const reschedules = appointments.reduce((sum, appointment) => sum + appointment.reschedules, 0);
  const floors: [count: number, none: string][] = [
    [paid, 'no payment had its webhook accepted'],
    [paidAndCancelled, 'no paid booking was cancelled'],
    [cancelledAppointments, 'no appointment was cancelled'],
    [reschedules, 'no reschedule was accepted'],
    [ledger.reschedules.lostToBooking, 'no reschedule lost the patient\'s time to the same patient\'s booking raced beside it'],
  ];
  const problems = floors.filter(([count]) => count < 1).map(([, none]) => `${none} (at least 1 expected)`);
  const share = traffic.requests === 0 ? 0 : traffic.overloaded / traffic.requests;
  const shed = `${fmt(traffic.overloaded)} of ${fmt(traffic.requests)} requests (${(share * 100).toFixed(1)} %)`;
  if (share > overloadedLimit) problems.push(`${shed} were shed as overloaded (503), more than ${overloadedLimit * 100} %`);
  const summary =
    `${fmt(paid)} payments with an accepted webhook (${fmt(ledger.webhookDeliveries)} deliveries accepted), ` +
    `${fmt(bookings.filter((booking) => booking.cancelled).length)} bookings cancelled (${fmt(paidAndCancelled)} paid), ${fmt(cancelledAppointments)} appointments cancelled, ` +
    `${fmt(reschedules)} reschedules accepted, ${fmt(ledger.reschedules.lostToBooking)} refused by the race with the same patient's booking (at least 1 of each); 503 overloaded: ${shed} (at most ${overloadedLimit * 100} %)`;
  return checkOf('the load paid, cancelled and rescheduled, and was not shed', summary, problems);
}

const rangeData = z.object({ bookingId: z.string(), startDate: z.string(), endDate: z.string() });
const slotData = z.object({ appointmentId: z.string(), start: z.iso.datetime(), end: z.iso.datetime() });

type Span = { readonly from: string | number; readonly to: string | number };
const overlap = (a: Span, b: Span) => a.from < b.to && b.from < a.to;
const spanText = (span: Span) => [span.from, span.to].map((end) => (typeof end === 'number' ? new Date(end).toISOString() : end)).join('..');

/** How a contended stream's events bear on who holds what. */
export type HoldKinds = {
  /** Take the holder's span (a new hold). */
  readonly takes: readonly string[];
  /** Take the holder's span, which must be live already: a hold made firm (booked). */
  readonly confirms: readonly string[];
  /** Give the holder's span back. */
  readonly frees: readonly string[];
  /** Move the holder's live span elsewhere. */
  readonly moves: readonly string[];
  /**
   * Take a span for the holder beside its live one (a slot held for a move: both are taken), then
   * make it the holder's live span (`completes`) or give it back (`drops`).
   */
  readonly heldForMove?: { readonly takes: readonly string[]; readonly completes: readonly string[]; readonly drops: readonly string[] };
};

export const listingCalendarKinds: HoldKinds = { takes: ['DatesHeld'], confirms: ['DatesBooked'], frees: ['DatesReleased'], moves: [] };
export const doctorScheduleKinds: HoldKinds = {
  takes: ['SlotBooked'],
  confirms: [],
  frees: ['SlotReleased'],
  moves: ['SlotMoved', 'SlotRestored'],
  heldForMove: { takes: ['SlotMoveHeld'], completes: ['SlotMoveCompleted'], drops: ['SlotMoveDropped'] },
};

/**
 * Replays one contended stream's holds; reports any span taken while an overlapping one was live,
 * and any confirmation of a span that was not live. A booked range is taken as much as a held
 * one: replayed as nothing, a booking confirmed after its dates were released (or given to
 * someone else) would leave its dates double-booked without a word.
 */
export function replayHolds(streamId: string, events: readonly { type: string; data: unknown }[], kinds: HoldKinds): string[] {
  const live = new Map<string, Span>();
  // Spans held for a holder's move, beside its live one: taken from everyone else, not from it.
  const beside = new Map<string, Span>();
  const problems: string[] = [];
  const take = (holder: string, span: Span, into = live) => {
    for (const [other, held] of [...live, ...beside]) if (other !== holder && overlap(held, span)) problems.push(`${streamId}: ${holder} took ${spanText(span)} while ${other} held ${spanText(held)}`);
    into.set(holder, span);
  };
  const moveHolds = kinds.heldForMove ?? { takes: [], completes: [], drops: [] };
  const known = [...kinds.takes, ...kinds.confirms, ...kinds.frees, ...kinds.moves, ...moveHolds.takes, ...moveHolds.completes, ...moveHolds.drops];
  for (const event of events) {
    const range = rangeData.safeParse(event.data);
    const slot = slotData.safeParse(event.data);
    const [holder, span] = range.success
      ? [range.data.bookingId, { from: range.data.startDate, to: range.data.endDate }]
      : slot.success
        ? [slot.data.appointmentId, { from: Date.parse(slot.data.start), to: Date.parse(slot.data.end) }]
        : [undefined, undefined];
    if (!holder || !span) {
      if (known.includes(event.type)) problems.push(`${streamId}: unreadable ${event.type}`);
      continue;
    }
    if (kinds.frees.includes(event.type)) live.delete(holder);
    else if (moveHolds.drops.includes(event.type)) beside.delete(holder);
    else if (moveHolds.takes.includes(event.type)) take(holder, span, beside);
    else if (moveHolds.completes.includes(event.type)) {
      beside.delete(holder);
      take(holder, span);
    } else if (kinds.confirms.includes(event.type)) {
      if (!live.has(holder)) problems.push(`${streamId}: ${event.type} of ${holder} for ${spanText(span)}, which it did not hold (released or never held)`);
      take(holder, span);
    } else if (kinds.takes.includes(event.type) || kinds.moves.includes(event.type)) take(holder, span);
  }
  return problems;
}

async function doubleHoldsInLog(db: Kysely<unknown>): Promise<{ problems: string[]; streams: number }> {
  const { rows } = await sql<{ stream_id: string; event_type: string; data: unknown }>`
    select stream_id, event_type, data from events
    where stream_id like 'listingCalendar-%' or stream_id like 'doctorSchedule-%' order by stream_id, revision`.execute(db);
  const streams = new Map<string, { type: string; data: unknown }[]>();
  for (const row of rows) {
    const events = streams.get(row.stream_id) ?? [];
    events.push({ type: row.event_type, data: row.data });
    streams.set(row.stream_id, events);
  }
  const problems: string[] = [];
  for (const [streamId, events] of streams) {
    problems.push(...replayHolds(streamId, events, streamId.startsWith('listingCalendar-') ? listingCalendarKinds : doctorScheduleKinds));
  }
  return { problems, streams: streams.size };
}

/** Overlapping live holds of one resource in the read models, as the query side would serve them. */
async function doubleHoldsInReadModels(db: Kysely<unknown>): Promise<string[]> {
  const queries = {
    'listing_availability.calendar_ranges': sql<{ a: string; b: string }>`
      select a.booking_id as a, b.booking_id as b from rm_listing_availability.calendar_ranges a
      join rm_listing_availability.calendar_ranges b on a.listing_id = b.listing_id and a.booking_id < b.booking_id
       and a.start_date < b.end_date and b.start_date < a.end_date
      where (a.status = 'booked' or a.hold_expires_at > now()) and (b.status = 'booked' or b.hold_expires_at > now()) limit 20`,
    'bookings.bookings': sql<{ a: string; b: string }>`
      select a.booking_id as a, b.booking_id as b from rm_bookings.bookings a
      join rm_bookings.bookings b on a.listing_id = b.listing_id and a.booking_id < b.booking_id
       and a.start_date < b.end_date and b.start_date < a.end_date
      where (a.status in ('paid', 'confirmed') or (a.status = 'requested' and a.hold_expires_at > now()))
        and (b.status in ('paid', 'confirmed') or (b.status = 'requested' and b.hold_expires_at > now())) limit 20`,
    'doctors.doctor_slots': sql<{ a: string; b: string }>`
      select a.appointment_id as a, b.appointment_id as b from rm_doctors.doctor_slots a
      join rm_doctors.doctor_slots b on a.doctor_id = b.doctor_id and a.appointment_id < b.appointment_id
       and a.start_at < b.end_at and b.start_at < a.end_at limit 20`,
    'appointments.appointments': sql<{ a: string; b: string }>`
      select a.appointment_id as a, b.appointment_id as b from rm_appointments.appointments a
      join rm_appointments.appointments b on a.doctor_id = b.doctor_id and a.appointment_id < b.appointment_id
       and a.start_at < b.end_at and b.start_at < a.end_at
      where a.status in ('scheduled', 'rescheduled') and b.status in ('scheduled', 'rescheduled') limit 20`,
  };
  const problems: string[] = [];
  for (const [table, query] of Object.entries(queries)) {
    const { rows } = await query.execute(db);
    problems.push(...rows.map((row) => `${table}: ${row.a} and ${row.b} hold the same time`));
  }
  return problems;
}

/** No listing day and no doctor slot is held twice: replayed from the log, and as the read models show it. */
export async function checkNoDoubleBooking(db: Kysely<unknown>): Promise<Check> {
  const log = await doubleHoldsInLog(db);
  const readModels = await doubleHoldsInReadModels(db);
  const summary = `${fmt(log.streams)} calendars and schedules replayed; availability, bookings, slots and appointments read models`;
  return checkOf('no listing day or doctor slot double-booked', summary, [...log.problems, ...readModels]);
}

/**
 * Hashes every read model, has each rebuilt from the first event (into a new generation, swapped
 * in when caught up), and hashes again: the incrementally built tables must equal the rebuild.
 * The log must not move meanwhile, or the two would rightly differ; then it tries again.
 */
export async function checkReadModelsEqualRebuild(
  db: Kysely<unknown>,
  names: readonly string[],
  rebuild: (name: string) => Promise<number>,
  print: (line: string) => void,
): Promise<Check> {
  print('read models against a fresh rebuild:');
  for (let attempt = 1; ; attempt++) {
    const head = await logHead(db);
    const live = new Map<string, Awaited<ReturnType<typeof tablesHash>>>();
    for (const name of names) live.set(name, await tablesHash(db, readSchema(name)));
    const generations = new Map<string, number>();
    for (const name of names) generations.set(name, await rebuild(name));
    const pending = await waitForGenerations(db, generations, 180_000);
    if (pending.length > 0) return checkOf('every read model equals a fresh rebuild', 'rebuilds did not finish', pending);
    const moved = comparePositions(await logHead(db), head) !== 0;
    if (moved && attempt < 3) {
      print(`  the log moved during the comparison; again (attempt ${attempt + 1})`);
      continue;
    }
    const problems: string[] = moved ? ['the log kept moving during the comparison'] : [];
    for (const name of names) {
      const before = live.get(name);
      const after = await tablesHash(db, readSchema(name));
      const same = before?.hash === after.hash;
      print(`  ${name}: ${fmt(before?.rows ?? 0)} rows live, ${fmt(after.rows)} rebuilt as generation ${generations.get(name)}, ${same ? 'equal' : 'DIFFERENT'} (sha256 ${after.hash.slice(0, 12)})`);
      if (!same) problems.push(`${name}: live ${before?.rows ?? 0} rows ${before?.hash.slice(0, 12) ?? ''}, rebuilt ${after.rows} rows ${after.hash.slice(0, 12)}`);
    }
    return checkOf('every read model equals a fresh rebuild', `${names.length} read models hashed (rows ordered by their text), rebuilt from position 0, hashed again`, problems);
  }
}

async function waitForGenerations(db: Kysely<unknown>, generations: ReadonlyMap<string, number>, timeoutMs: number): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const checkpoints = await listCheckpoints(db);
    const pending = [...generations].filter(([name, generation]) => !checkpoints.some((row) => row.name === name && row.active && row.generation >= generation));
    const failed = checkpoints.filter((row) => row.status === 'failed');
    if (failed.length > 0) return failed.map((row) => `${row.name} generation ${row.generation} failed: ${row.lastFailure?.error ?? '?'}`);
    if (pending.length === 0) return [];
    if (Date.now() > deadline) return pending.map(([name, generation]) => `${name}: generation ${generation} not swapped in after ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}
