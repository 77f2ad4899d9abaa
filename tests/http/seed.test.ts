import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemo } from '../../src/infrastructure/seed/seed-demo.js';
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
    await seedDemo(api.side, api.identity, (line) => lines.push(line));

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
    await seedDemo(api.side, api.identity, (line) => lines.push(line));
    expect(lines.every((line) => line.endsWith('left unchanged'))).toBe(true);
  });
});
