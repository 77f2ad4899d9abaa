import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { createIdentityService } from '../../src/application/identity/identity.service.js';
import type { EventStore } from '../../src/application/ports/event-store.js';
import { Argon2PasswordHasher } from '../../src/infrastructure/identity/argon2-password-hasher.js';
import { PgCredentialStore } from '../../src/infrastructure/identity/pg-credential-store.js';
import { PgRefreshTokenStore } from '../../src/infrastructure/identity/pg-refresh-token-store.js';
import { PgSecurityEventLog } from '../../src/infrastructure/identity/pg-security-event-log.js';
import { createListing } from '../../src/application/listings/listing.use-cases.js';
import { seedDemo, type DemoSeedDeps } from '../../src/infrastructure/seed/seed-demo.js';
import { createTestSide, fakeClock } from '../support/command-side.js';
import { pgVault } from '../support/personal-data.js';
import { eventually } from '../projections/support/runtime-harness.js';
import { startApi, startBackend, type TestApi, type TestBackend } from './support/command-api.fixture.js';

describe('npm run seed: demo data', () => {
  let backend: TestBackend;
  let api: TestApi;
  beforeAll(async () => {
    backend = await startBackend();
    api = await startApi(backend);
  });
  afterAll(async () => {
    await api.close();
    await backend.close();
  });

  it('creates an owner with listings, a consumer, doctors with schedules and a patient, each able to log in', async () => {
    const lines: string[] = [];
    await seedDemo({ side: api.side, identity: api.identity, credentials: new PgCredentialStore(backend.identityDb) }, (line) => lines.push(line));

    const created = lines.flatMap((line) => /^created \S+ (\S+) password (\S+)/.exec(line)?.slice(1, 3) ?? []);
    expect(created.filter((_, i) => i % 2 === 0)).toEqual([
      'owner@bookable.local',
      'consumer@bookable.local',
      'doctor.house@bookable.local',
      'doctor.quinn@bookable.local',
      'patient@bookable.local',
    ]);
    const [email, password] = created;
    const login = await fetch(`${api.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });
    expect(login.status).toBe(200);

    // readAll shows events below the cluster's oldest open transaction only; other test files'
    // transactions on the same server may hold the newest ones back for a moment.
    const types = await eventually(async () => {
      const seen: string[] = [];
      for await (const event of backend.eventStore.readAll()) seen.push(event.type);
      return seen.filter((type) => type === 'ScheduleSet').length === 2 ? seen : undefined;
    }, 10_000, 'both schedules to be readable');
    expect(types.filter((type) => type === 'ListingCreated')).toHaveLength(3);
  });

  it('leaves existing accounts and their data alone when run again', async () => {
    const lines: string[] = [];
    await seedDemo({ side: api.side, identity: api.identity, credentials: new PgCredentialStore(backend.identityDb) }, (line) => lines.push(line));
    expect(lines.every((line) => line.endsWith('left unchanged'))).toBe(true);
  });
});

describe('npm run seed: demo data interrupted part-way', () => {
  let backend: TestBackend;
  beforeEach(async () => {
    backend = await startBackend();
  });
  afterEach(() => backend.close());

  /** The seed's dependencies over `eventStore`, as main.ts builds them. */
  function seeding(eventStore: EventStore): DemoSeedDeps {
    const clock = fakeClock('2030-01-07T08:00:00Z');
    const side = createTestSide(eventStore, clock, 15, pgVault(backend.pool));
    const credentials = new PgCredentialStore(backend.identityDb);
    const identity = createIdentityService({
      users: side.handlers.user,
      credentials,
      refreshTokens: new PgRefreshTokenStore(backend.identityDb),
      securityEvents: new PgSecurityEventLog(backend.identityDb),
      passwords: new Argon2PasswordHasher(),
      clock,
    });
    return { side, identity, credentials };
  }

  /** `store`, whose append of the `nth` listing fails as a lost connection would. */
  function failingOnListing(store: EventStore, nth: number): EventStore {
    let listings = 0;
    return {
      appendToStream: async (streamId, events, options) => {
        if (events.some((event) => event.type === 'ListingCreated') && ++listings === nth) throw new Error('connection lost');
        return store.appendToStream(streamId, events, options);
      },
      readStream: (streamId, options) => store.readStream(streamId, options),
      readAll: (options) => store.readAll(options),
      subscribeToAll: (options) => store.subscribeToAll(options),
      headPosition: () => store.headPosition(),
      close: () => store.close(),
    };
  }

  async function countsByType(): Promise<Record<string, number>> {
    const { rows } = await backend.pool.query<{ event_type: string; count: number }>('SELECT event_type, count(*)::int AS count FROM events GROUP BY event_type');
    return Object.fromEntries(rows.map((row) => [row.event_type, row.count]));
  }

  it("a run that failed on the owner's 2nd listing is finished by the next; a third appends nothing", async () => {
    const ignore = () => undefined;
    await expect(seedDemo(seeding(failingOnListing(backend.eventStore, 2)), ignore)).rejects.toThrow('connection lost');
    expect(await countsByType()).toEqual({ UserRegistered: 1, ListingCreated: 1 });

    const lines: string[] = [];
    await seedDemo(seeding(backend.eventStore), (line) => lines.push(line));
    expect(lines.slice(0, 2)).toEqual(['owner@bookable.local exists already; completing its demo data', '  with 2 more listings (3 in all)']);
    const seeded = await countsByType();
    expect(seeded).toMatchObject({ UserRegistered: 5, ListingCreated: 3, ScheduleSet: 2 });

    const third: string[] = [];
    await seedDemo(seeding(backend.eventStore), (line) => third.push(line));
    expect(third.every((line) => line.endsWith('left unchanged'))).toBe(true);
    expect(await countsByType()).toEqual(seeded);
  });

  it('an owner an earlier version seeded (its listings under random ids) gets no second set', async () => {
    const ignore = () => undefined;
    await expect(seedDemo(seeding(failingOnListing(backend.eventStore, 1)), ignore)).rejects.toThrow('connection lost');
    const { side, credentials } = seeding(backend.eventStore);
    const owner = await credentials.findByEmail('owner@bookable.local');
    if (!owner) throw new Error('the owner was not signed up');
    const ownerActor = { id: owner.userId, roles: ['OWNER' as const] };
    for (const title of ['Loft', 'Barn', 'Studio']) {
      const id = randomUUID();
      const listing = { title, description: 'seeded before', category: 'venue', location: 'Berlin', pricePerDay: 10_000, currency: 'EUR', capacity: 10 };
      await createListing(side, listing, { commandId: id, context: { actor: ownerActor, requestId: id, correlationId: id, causationId: id } });
    }

    const lines: string[] = [];
    await seedDemo(seeding(backend.eventStore), (line) => lines.push(line));

    expect(lines[0]).toBe('owner@bookable.local exists already; left unchanged');
    expect(await countsByType()).toMatchObject({ ListingCreated: 3 });
  });
});
