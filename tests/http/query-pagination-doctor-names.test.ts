import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streamIdOf } from '../../src/domain/user/user.decider.js';
import { CursorCodec, pageQuery } from '../../src/infrastructure/http/query-context.js';
import { registerUser } from '../projections/support/scenarios.js';
import { startQueryApi, type QueryApiFixture } from './support/query-api.fixture.js';

type Page = { items: { id: string; name: string }[]; nextCursor: string | null };

/**
 * Names as older releases stored them: control characters were let through until signup refused
 * them, and the event schema bounds no name. JSON writes a control character as six bytes
 * (`\u0001`), the longest any character gets, so a cursor holding such a name whole outgrew
 * `?cursor=` and its next page was refused.
 */
const legacyDoctors = [
  { id: 'doctor-controls', name: '\u0001'.repeat(200) },
  { id: 'doctor-emoji', name: '\u{1F600}'.repeat(200) },
  { id: 'doctor-longer', name: '\u0002'.repeat(1000) },
];

describe('GET /v1/doctors: paging past any name a doctor may have', () => {
  let q: QueryApiFixture;

  /** A UserRegistered appended as stored before names were checked, name and email sealed as always. */
  async function registeredBefore({ id, name }: { id: string; name: string }) {
    const { data, personalData } = await q.harness.vault.seal(id, { userId: id, email: `${id}@example.test`, name, roles: ['DOCTOR'] }, [['email'], ['name']]);
    const requestId = randomUUID();
    const metadata = {
      actorId: id,
      actorRoles: ['DOCTOR'],
      correlationId: requestId,
      causationId: requestId,
      requestId,
      occurredAt: q.clock.now().toISOString(),
      schemaVersion: 1,
      ...(personalData ? { personalData } : {}),
    };
    await q.harness.store.appendToStream(streamIdOf(id), [{ id: randomUUID(), type: 'UserRegistered', data, metadata }]);
  }

  beforeAll(async () => {
    q = await startQueryApi();
    for (const doctor of legacyDoctors) await registeredBefore(doctor);
    // Appended through the command side last, so that settling waits for the ones above too.
    for (const name of ['Dr Ada', 'Dr Bea', 'Dr Zoe']) await registerUser(q.side, { id: `doctor-${name.slice(3).toLowerCase()}`, roles: ['DOCTOR'] }, name);
    await q.settle();
  }, 60_000);
  afterAll(() => q.close());

  it('follows nextCursor one doctor at a time past each of them, in the order of a single page', async () => {
    const whole = await q.app.inject({ url: '/v1/doctors?limit=100' });
    expect(whole.statusCode).toBe(200);
    const order = whole.json<Page>().items.map((doctor) => doctor.id);
    expect([...order].sort()).toEqual(['doctor-ada', 'doctor-bea', 'doctor-zoe', ...legacyDoctors.map((doctor) => doctor.id)].sort());

    const walked: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/doctors?limit=1${cursor === null ? '' : `&cursor=${cursor}`}`;
      const response = await q.app.inject({ url });
      expect(response.statusCode, response.body.slice(0, 300)).toBe(200);
      const page = response.json<Page>();
      walked.push(...page.items.map((doctor) => doctor.id));
      cursor = page.nextCursor;
      expect(walked.length).toBeLessThanOrEqual(order.length);
    } while (cursor !== null);
    expect(walked).toEqual(order);
  });

  it('takes back the cursor of the largest sort key any route has: a doctor name of 200 control characters, and an id of 200', () => {
    const worst = new CursorCodec('any secret').encode('doctors', { name: '\u0001'.repeat(200), doctorId: '\u0001'.repeat(200) });
    expect(pageQuery.safeParse({ cursor: worst }).success).toBe(true);
  });
});
