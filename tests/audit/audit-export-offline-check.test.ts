import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventHash } from '../../src/application/audit/hash-chain.js';
import type { Actor } from '../../src/application/metadata.js';
import type { JsonObject } from '../../src/application/ports/event-store.js';
import { admin } from '../support/command-side.js';
import { registerUser } from '../projections/support/scenarios.js';
import { startQueryApi, type QueryApiFixture } from '../http/support/query-api.fixture.js';

// A recipient of an export checks each line against its `hash` offline, with `eventHash`: that
// needs the event id (chain version 2 covers it) and the data as stored (the hash covers sealed
// personal fields, not the revealed text).

const auditor: Actor = { id: 'auditor-1', roles: ['AUDITOR'] };

type Line = {
  streamId: string;
  eventId: string;
  revision: number;
  type: string;
  data: JsonObject;
  metadata: JsonObject;
  hash: string | null;
  prevHash: string | null;
};

/** What a recipient recomputes from a line alone. */
const recomputed = (line: Line) => eventHash(line.prevHash ?? '', { streamId: line.streamId, id: line.eventId, type: line.type, data: line.data, metadata: line.metadata, revision: line.revision });

describe('an audit export checked offline, line by line', () => {
  let q: QueryApiFixture;
  const person: Actor = { id: randomUUID(), roles: ['PATIENT'] };
  const stream = `user-${person.id}`;

  beforeAll(async () => {
    q = await startQueryApi();
    await registerUser(q.side, person, 'Pat Offline');
  });
  afterAll(() => q.close());

  const get = (url: string, actor: Actor = auditor) => q.app.inject({ url, headers: q.auth(actor) });
  const linesOf = (body: string) =>
    body
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as Line);
  const storedIds = async () => {
    const read = await q.harness.store.readStream(stream);
    const ids: string[] = [];
    if (read.status === 'found') for await (const event of read.events) ids.push(event.id);
    return ids;
  };

  it('given a registered user, when exported and read as history, then every line carries its event id', async () => {
    const exported = linesOf((await get(`/v1/audit/export?streamPrefix=${stream}`)).body);
    const history = (await get(`/v1/audit/streams/${stream}/events`)).json<{ items: Line[] }>().items;
    expect(exported.map((line) => line.eventId)).toEqual(await storedIds());
    expect(history.map((line) => line.eventId)).toEqual(await storedIds());
  });

  it('given a line with its personal fields revealed, when rehashed, then it does not give its hash: the hash covers the sealed form', async () => {
    const [registered] = linesOf((await get(`/v1/audit/export?streamPrefix=${stream}`)).body);
    expect(registered?.data.name).toBe('Pat Offline');
    expect(registered && recomputed(registered)).not.toBe(registered?.hash);
  });

  it('given the stored form, when each line is rehashed with eventHash and its prevHash, then it gives its hash, and personal fields stay sealed', async () => {
    const response = await get(`/v1/audit/export?streamPrefix=${stream}&form=stored`);
    expect(response.statusCode).toBe(200);
    const lines = linesOf(response.body);
    expect(lines.map((line) => line.type)).toEqual(['UserRegistered']);
    for (const line of lines) {
      expect(line.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(recomputed(line)).toBe(line.hash);
    }
    expect(JSON.stringify(lines)).not.toContain('Pat Offline');
  });

  it('given an admin who is no auditor, when the stored form is asked for, then 403: it would show health data stored in clear', async () => {
    expect((await get(`/v1/audit/export?streamPrefix=${stream}&form=stored`, admin)).statusCode).toBe(403);
    expect((await get(`/v1/audit/export?streamPrefix=${stream}`, admin)).statusCode).toBe(200);
  });

  it('documents eventId and the stored form in /docs', async () => {
    type Schema = { required?: string[]; properties?: Record<string, { description?: string }> };
    type Parameter = { name: string; in: string; description?: string };
    type Docs = { components: { schemas: Record<string, Schema> }; paths: Record<string, { get: { parameters?: Parameter[] } }> };
    const docs = (await q.app.inject({ url: '/docs/json' })).json<Docs>();
    expect(docs.components.schemas.AuditEvent?.required).toContain('eventId');
    const form = docs.paths['/v1/audit/export']?.get.parameters?.find((parameter) => parameter.name === 'form');
    expect(form?.description).toContain('stored');
  });
});
