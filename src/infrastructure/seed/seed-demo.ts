import { randomBytes, randomUUID } from 'node:crypto';
import type { CommandSide } from '../../application/command-handlers.js';
import type { CommandOptions } from '../../application/command-handling/handle-command.js';
import type { CredentialStore } from '../../application/identity/identity.ports.js';
import type { IdentityService } from '../../application/identity/identity.service.js';
import { deterministicUuid } from '../../application/ids.js';
import { createdListingId, createListing } from '../../application/listings/listing.use-cases.js';
import { setSchedule } from '../../application/schedules/schedule.use-cases.js';
import { doctorScheduleStreamId } from '../../domain/doctor-schedule/doctor-schedule.decider.js';
import { listingStreamId } from '../../domain/listing/listing.decider.js';
import type { Actor } from '../../domain/shared/actor.js';
import { DomainError } from '../../domain/shared/domain-error.js';
import { streamIdOf } from '../../domain/user/user.decider.js';
import type { UserRole } from '../../domain/user/user.events.js';
import type { Config } from '../config/config.js';

type DemoAccount = { email: string; name: string; roles: UserRole[]; specialty?: string };

const accounts: DemoAccount[] = [
  { email: 'owner@bookable.local', name: 'Olga Owner', roles: ['OWNER'] },
  { email: 'consumer@bookable.local', name: 'Carl Consumer', roles: ['CONSUMER'] },
  { email: 'doctor.house@bookable.local', name: 'Dr. Gregory House', roles: ['DOCTOR'], specialty: 'Diagnostic medicine' },
  { email: 'doctor.quinn@bookable.local', name: 'Dr. Michaela Quinn', roles: ['DOCTOR'], specialty: 'General practice' },
  { email: 'patient@bookable.local', name: 'Pat Patient', roles: ['PATIENT'] },
];

const listings = [
  { title: 'Riverside loft', description: 'Bright two-bedroom loft on the Saône', category: 'venue', location: 'Lyon', capacity: 6, pricePerDay: 14_000, currency: 'EUR', timeZone: 'Europe/Paris' },
  { title: 'Concert PA system', description: '2 × 1 kW speakers, mixer, cables', category: 'equipment', location: 'Berlin', capacity: 1, pricePerDay: 9_500, currency: 'EUR', timeZone: 'Europe/Berlin' },
  { title: 'Garden for weddings', description: 'Lawn and pavilion for up to 120 guests', category: 'venue', location: 'Porto', capacity: 120, pricePerDay: 60_000, currency: 'EUR', timeZone: 'Europe/Lisbon' },
];

const weekdays = [{ from: '09:00', to: '12:30' }, { from: '14:00', to: '17:00' }];

const seeder: Actor = { id: 'system:seed', roles: ['ADMIN'] };

export type DemoSeedDeps = {
  readonly side: CommandSide;
  readonly identity: IdentityService;
  /** Finds the user id of a demo account an earlier run created, whose data a rerun completes. */
  readonly credentials: Pick<CredentialStore, 'findByEmail'>;
};

function request(actor: Actor, commandId: string = randomUUID()): CommandOptions {
  return { commandId, context: { actor, requestId: commandId, correlationId: commandId, causationId: commandId } };
}

/**
 * Demo data for local use: an owner with listings, a consumer, doctors with schedules and a
 * patient, each with a generated password printed once. An account that exists already keeps its
 * password; of its data only what an interrupted run did not create yet is added, so running the
 * seed again finishes the job, and once finished appends nothing.
 */
export async function seedDemo(deps: DemoSeedDeps, print: (line: string) => void): Promise<void> {
  for (const account of accounts) {
    const user = await signUpOrFind(deps, account, print);
    if (!user) continue;
    // A role taken away since (or given to the account) is not the demo's to act on.
    const has = (role: UserRole) => account.roles.includes(role) && user.actor.roles.includes(role);
    const added: string[] = [];
    if (has('OWNER')) added.push(...(await seedListings(deps.side, user.actor, user.created)));
    if (has('DOCTOR')) added.push(...(await seedSchedule(deps.side, user.actor, account.specialty ?? null)));
    if (!user.created) print(`${account.email} exists already; ${added.length === 0 ? 'left unchanged' : 'completing its demo data'}`);
    for (const line of added) print(line);
  }
}

/** The account, created now or by an earlier run; `undefined` for one the seed must leave alone. */
async function signUpOrFind({ side, identity, credentials }: DemoSeedDeps, account: DemoAccount, print: (line: string) => void) {
  const password = randomBytes(12).toString('base64url');
  try {
    const { specialty: _specialty, ...profile } = account;
    const { id } = await identity.signUp({ ...profile, password }, request(seeder).context, randomUUID());
    print(`created ${account.roles.join(', ')} ${account.email} password ${password} (local use only)`);
    return { actor: { id, roles: account.roles }, created: true };
  } catch (error) {
    if (!(error instanceof DomainError && error.code === 'email-taken')) throw error;
  }
  const found = await credentials.findByEmail(account.email);
  const user = found && (await side.handlers.user.read(streamIdOf(found.userId))).state;
  // Acting for it as it is now: an account erased, or whose registration never got recorded, gets nothing.
  if (!found || user?.status !== 'registered' || user.erased) return undefined;
  return { actor: { id: found.userId, roles: [...user.roles] }, created: false };
}

/**
 * The owner's demo listings not created yet. Each one's command id derives from the owner, so
 * a rerun names the same listings and creates only those an interrupted run did not. An owner
 * found with none of them is left alone: seeds before these ids gave listings random ones, and
 * theirs would be made twice (the price: a run that died between the account and its first
 * listing is not completed).
 */
async function seedListings(side: CommandSide, owner: Actor, newAccount: boolean): Promise<string[]> {
  const missing: { commandId: string; listing: (typeof listings)[number] }[] = [];
  for (const [index, listing] of listings.entries()) {
    const commandId = deterministicUuid(owner.id, `seed-listing-${index}`);
    const { state } = await side.handlers.listing.read(listingStreamId(createdListingId(commandId)));
    if (state.status === 'none') missing.push({ commandId, listing });
  }
  if (!newAccount && missing.length === listings.length) return [];
  for (const { commandId, listing } of missing) await createListing(side, listing, request(owner, commandId));
  const created = missing.length;
  if (created === 0) return [];
  return [created === listings.length ? `  with ${created} listings` : `  with ${created} more listings (${listings.length} in all)`];
}

/** The doctor's demo schedule, unless they have one: a schedule they set since is theirs to keep. */
async function seedSchedule(side: CommandSide, doctor: Actor, specialty: string | null): Promise<string[]> {
  const { state } = await side.handlers.doctorSchedule.read(doctorScheduleStreamId(doctor.id));
  if (state.status !== 'unset' || state.withdrawn) return [];
  const weeklyHours = { mon: weekdays, tue: weekdays, wed: weekdays, thu: weekdays, fri: weekdays, sat: [], sun: [] };
  await setSchedule(side, doctor.id, { timeZone: 'Europe/Berlin', slotMinutes: 30, weeklyHours, daysOff: [], specialty }, request(doctor, deterministicUuid(doctor.id, 'seed-schedule')));
  return [`  with a weekday schedule (09:00–12:30, 14:00–17:00 Europe/Berlin, 30-minute slots), specialty ${specialty ?? 'none'}`];
}

/**
 * Why `npm run seed` leaves the demo data out, or `undefined` to add it. `demo` is the command
 * line's choice (`--demo` true, `--no-demo` false). Production adds it only when asked: its
 * accounts, listings and schedules would stay in the append-only log for good.
 */
export function demoSkipped(demo: boolean | undefined, nodeEnv: Config['NODE_ENV']): string | undefined {
  if (demo === false) return 'demo data skipped (--no-demo)';
  if (demo === undefined && nodeEnv === 'production') return 'demo data skipped: NODE_ENV=production (add it with --demo)';
  return undefined;
}
