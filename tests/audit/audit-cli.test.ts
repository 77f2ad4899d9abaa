import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aggregates } from '../../src/application/aggregates/aggregates.js';
import { chainMetadata, genesisHash } from '../../src/application/audit/hash-chain.js';
import { commandHandler } from '../../src/application/command-handling/handle-command.js';
import { as, fakeClock, listingInput, owner } from '../support/command-side.js';
import { childEnv } from '../support/child-env.js';
import { createHarness, type Harness } from '../projections/support/runtime-harness.js';
import { createListing, updateListing } from './support/listing-commands.js';
import { testMasterKeyText } from '../support/personal-data.js';

const run = promisify(execFile);

async function cli(h: Harness, script: string, args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', script, ...args], { env: childEnv({ DATABASE_URL: h.url, MASTER_KEY: testMasterKeyText, LOG_LEVEL: 'silent', ...env }) });
    return { code: 0, stdout };
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && typeof error.code === 'number' && 'stdout' in error && typeof error.stdout === 'string')) throw error;
    return { code: error.code, stdout: error.stdout };
  }
}

/** An edit of stored events as the table owner can make one: the trigger that refuses it disabled meanwhile. */
async function asTableOwner(h: Harness, sql: string, params: unknown[]): Promise<void> {
  await h.pool.query('ALTER TABLE events DISABLE TRIGGER events_immutable');
  await h.pool.query(sql, params);
  await h.pool.query('ALTER TABLE events ENABLE TRIGGER events_immutable');
}

describe('npm run audit:verify and npm run replay', () => {
  let h: Harness;
  let streamId: string;

  beforeAll(async () => {
    h = await createHarness();
    const handler = commandHandler(aggregates.listing, { eventStore: h.store, clock: fakeClock('2030-01-01T00:00:00Z') });
    const listingId = randomUUID();
    streamId = `listing-${listingId}`;
    await handler.handle(streamId, createListing(listingId, listingInput), as(owner));
    await handler.handle(streamId, updateListing(listingId, { pricePerDay: 7_000 }), as(owner));
  });
  afterAll(() => h.close());

  it('replay prints the state at a version', async () => {
    const { code, stdout } = await cli(h, 'src/infrastructure/audit/replay.cli.ts', ['--stream', streamId, '--version', '0']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ streamId, version: 0, state: { status: 'active', listing: { price: { pricePerDay: listingInput.pricePerDay } } } });
  });

  it('replay folds through an event it cannot reveal, as the audit API does, and names it', async () => {
    const appointmentId = randomUUID();
    const stream = `appointment-${appointmentId}`;
    const data = {
      appointmentId,
      patientId: randomUUID(),
      doctorId: randomUUID(),
      start: '2030-02-04T09:00:00.000Z',
      end: '2030-02-04T09:30:00.000Z',
      reason: 'c2VhbGVk',
      scheduledBy: 'patient',
      scheduledAt: '2030-01-10T10:00:00.000Z',
    };
    // personalData that does not parse: no reader can tell what was sealed.
    const type = 'AppointmentScheduled';
    const id = randomUUID();
    const metadata = chainMetadata(genesisHash, { streamId: stream, id, type, data, metadata: { personalData: 'reason', schemaVersion: 1 }, revision: 0 });
    await h.store.appendToStream(stream, [{ id, type, data, metadata }]);
    const { code, stdout } = await cli(h, 'src/infrastructure/audit/replay.cli.ts', ['--stream', stream]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ streamId: stream, version: 0, unreadableRevisions: [0], state: { status: 'scheduled' } });
  });

  it('audit:verify passes an intact log and names a tampered revision with exit code 1', async () => {
    expect(await cli(h, 'src/infrastructure/audit/audit-verify.cli.ts')).toMatchObject({ code: 0, stdout: expect.stringContaining('0 broken') });
    await asTableOwner(h, `UPDATE events SET metadata = jsonb_set(metadata, '{actorId}', '"someone-else"') WHERE stream_id = $1 AND revision = 1`, [streamId]);
    const broken = await cli(h, 'src/infrastructure/audit/audit-verify.cli.ts');
    expect(broken).toMatchObject({ code: 1, stdout: expect.stringContaining(`BROKEN ${streamId} at revision 1: hash-mismatch`) });
  });
});

describe('npm run audit:verify over a stream with an event appended outside the command loop', () => {
  let h: Harness;
  let stream: string;

  beforeAll(async () => {
    h = await createHarness();
    const handler = commandHandler(aggregates.listing, { eventStore: h.store, clock: fakeClock('2030-01-01T00:00:00Z') });
    const listingId = randomUUID();
    stream = `listing-${listingId}`;
    await handler.handle(stream, createListing(listingId, listingInput), as(owner));
    // No chain fields: appended by hand, as an operator or a migration might.
    await h.store.appendToStream(stream, [{ id: randomUUID(), type: 'ListingPriceChanged', data: { listingId, pricePerDay: 5_000, currency: 'EUR' }, metadata: { schemaVersion: 1 } }]);
    await handler.handle(stream, updateListing(listingId, { pricePerDay: 6_000 }), as(owner));
    await handler.handle(stream, updateListing(listingId, { pricePerDay: 7_000 }), as(owner));
  });
  afterAll(() => h.close());

  it("verifies the event through the next event's link (exit 0, listed as UNHASHED); the last event edited and stripped of its hash exits 2; an edit of a hashed event exits 1", async () => {
    const verified = await cli(h, 'src/infrastructure/audit/audit-verify.cli.ts');
    expect(verified).toMatchObject({ code: 0, stdout: expect.stringContaining(`UNHASHED ${stream} at revision 1:`) });
    expect(verified.stdout).toContain('0 broken; 0 unverified tails; 1 unhashed');

    await asTableOwner(h, `UPDATE events SET data = jsonb_set(data, '{pricePerDay}', '1'), metadata = metadata - 'hash' - 'prevHash' WHERE stream_id = $1 AND revision = 3`, [stream]);
    const stripped = await cli(h, 'src/infrastructure/audit/audit-verify.cli.ts');
    expect(stripped).toMatchObject({ code: 2, stdout: expect.stringContaining(`UNVERIFIED ${stream} from revision 3:`) });
    expect(stripped.stdout).toContain('0 broken; 1 unverified tail; 1 unhashed');

    await asTableOwner(h, `UPDATE events SET data = jsonb_set(data, '{pricePerDay}', '1') WHERE stream_id = $1 AND revision = 2`, [stream]);
    const edited = await cli(h, 'src/infrastructure/audit/audit-verify.cli.ts');
    expect(edited).toMatchObject({ code: 1, stdout: expect.stringContaining(`BROKEN ${stream} at revision 2: hash-mismatch`) });
    expect(edited.stdout).not.toContain('UNVERIFIED');
  });
});

// The global order shows an event only once every older transaction has ended: a check that read
// it as it stood skipped what committed behind one still open, and exited 0 all the same.
describe('npm run audit:verify while a transaction open since before it holds back the log', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await createHarness();
    const listingId = randomUUID();
    await commandHandler(aggregates.listing, { eventStore: h.store, clock: fakeClock('2030-01-01T00:00:00Z') }).handle(`listing-${listingId}`, createListing(listingId, listingInput), as(owner));
  });
  afterAll(() => h.close());

  it('given a stream tampered behind a transaction still open, when verified, then it waits for it, exits 4 and says NOT CHECKED; once it ends, exit 1 names the break', async () => {
    const held = await h.pool.connect();
    let tampered = '';
    let whileHeld: { code: number; stdout: string };
    try {
      await held.query('BEGIN');
      await held.query('SELECT pg_current_xact_id()');
      const listingId = randomUUID();
      tampered = `listing-${listingId}`;
      const handler = commandHandler(aggregates.listing, { eventStore: h.store, clock: fakeClock('2030-01-01T00:00:00Z') });
      await handler.handle(tampered, createListing(listingId, listingInput), as(owner));
      await handler.handle(tampered, updateListing(listingId, { pricePerDay: 7_000 }), as(owner));
      await asTableOwner(h, `UPDATE events SET metadata = jsonb_set(metadata, '{actorId}', '"someone-else"') WHERE stream_id = $1 AND revision = 1`, [tampered]);

      whileHeld = await cli(h, 'src/infrastructure/audit/audit-verify.cli.ts', [], { QUERY_CONSISTENCY_TIMEOUT_MS: '300' });
    } finally {
      await held.query('ROLLBACK');
      held.release();
    }
    expect(whileHeld.code).toBe(4);
    expect(whileHeld.stdout).toMatch(/NOT CHECKED: events committed before this check began are held back by a transaction still open after 300 ms \(open for \d+ s: pid \d+/);

    const after = await cli(h, 'src/infrastructure/audit/audit-verify.cli.ts');
    expect(after).toMatchObject({ code: 1, stdout: expect.stringContaining(`BROKEN ${tampered} at revision 1: hash-mismatch`) });
    expect(after.stdout).not.toContain('NOT CHECKED');
  });
});
