import { randomBytes, randomUUID } from 'node:crypto';
import type { CommandSide } from '../../application/command-handlers.js';
import type { CommandOptions } from '../../application/command-handling/handle-command.js';
import type { IdentityService } from '../../application/identity/identity.service.js';
import { createListing } from '../../application/listings/listing.use-cases.js';
import { setSchedule } from '../../application/schedules/schedule.use-cases.js';
import type { Actor } from '../../domain/shared/actor.js';
import { DomainError } from '../../domain/shared/domain-error.js';
import type { UserRole } from '../../domain/user/user.events.js';

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

function request(actor: Actor): CommandOptions {
  const id = randomUUID();
  return { commandId: id, context: { actor, requestId: id, correlationId: id, causationId: id } };
}

/**
 * Demo data for local use: an owner with listings, a consumer, doctors with schedules and a
 * patient, each with a generated password printed once. Accounts that exist already are left
 * alone, and so is their data.
 */
export async function seedDemo(side: CommandSide, identity: IdentityService, print: (line: string) => void): Promise<void> {
  const seeder: Actor = { id: 'system:seed', roles: ['ADMIN'] };
  for (const account of accounts) {
    const password = randomBytes(12).toString('base64url');
    let userId: string;
    try {
      const { specialty: _specialty, ...profile } = account;
      userId = (await identity.signUp({ ...profile, password }, request(seeder).context, randomUUID())).id;
    } catch (error) {
      if (!(error instanceof DomainError && error.code === 'email-taken')) throw error;
      print(`${account.email} exists already; left unchanged`);
      continue;
    }
    print(`created ${account.roles.join(', ')} ${account.email} password ${password} (local use only)`);
    const actor: Actor = { id: userId, roles: account.roles };
    if (account.roles.includes('OWNER')) {
      for (const listing of listings) await createListing(side, listing, request(actor));
      print(`  with ${listings.length} listings`);
    }
    if (account.roles.includes('DOCTOR')) {
      const weeklyHours = { mon: weekdays, tue: weekdays, wed: weekdays, thu: weekdays, fri: weekdays, sat: [], sun: [] };
      const specialty = account.specialty ?? null;
      await setSchedule(side, userId, { timeZone: 'Europe/Berlin', slotMinutes: 30, weeklyHours, daysOff: [], specialty }, request(actor));
      print(`  with a weekday schedule (09:00–12:30, 14:00–17:00 Europe/Berlin, 30-minute slots), specialty ${specialty ?? 'none'}`);
    }
  }
}
