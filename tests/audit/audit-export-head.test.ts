import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Actor } from '../../src/application/metadata.js';
import type { ReadAllOptions, RecordedEvent } from '../../src/application/ports/event-store.js';
import { sleep } from '../../src/application/sleep.js';
import { startQueryApi, type QueryApiFixture } from '../http/support/query-api.fixture.js';

// fastify answers HEAD by running the GET handler and discarding its body; for the export that
// body is a stream, which fastify then drains to nobody: every event read (and every key looked
// up) after the reply had gone, once per HEAD.

const auditor: Actor = { id: 'auditor-1', roles: ['AUDITOR'] };
const prefix = `noted${randomUUID().slice(0, 8)}-`;
const streams = 30;
const perStream = 100;

describe('HEAD /v1/audit/export', () => {
  let q: QueryApiFixture;
  let url: string;
  /** Events the store handed to reads of the log filtered to `prefix`: the export's reads. */
  let exportReads = 0;

  beforeAll(async () => {
    q = await startQueryApi();
    for (let stream = 0; stream < streams; stream++) {
      const events = Array.from({ length: perStream }, (_, n) => ({ id: randomUUID(), type: 'Noted', data: { n }, metadata: { schemaVersion: 1 } }));
      await q.harness.store.appendToStream(`${prefix}${stream}`, events);
    }
    const store = q.harness.store;
    const readAll = store.readAll.bind(store);
    vi.spyOn(store, 'readAll').mockImplementation((options?: ReadAllOptions) => {
      const events = readAll(options);
      if (!options?.filter?.streamPrefixes?.includes(prefix)) return events;
      return (async function* counted(): AsyncGenerator<RecordedEvent> {
        for await (const event of events) {
          exportReads++;
          yield event;
        }
      })();
    });
    url = await q.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => q.close());

  const exportUrl = () => `${url}/v1/audit/export?streamPrefix=${prefix}`;

  it(`given ${streams * perStream} events, when HEAD is asked over HTTP, then it answers with the export's headers, reads no event, and is access-logged`, async () => {
    const head = await fetch(exportUrl(), { method: 'HEAD', headers: q.auth(auditor) });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');

    // Time enough for a drained stream to have read them all.
    await sleep(1_000);
    expect(exportReads).toBe(0);
    const logged = await q.harness.pool.query<{ action: string }>('SELECT action FROM access_log WHERE resource = $1', [`/v1/audit/export?streamPrefix=${prefix}`]);
    expect(logged.rows.map((row) => row.action)).toEqual(['HEAD /v1/audit/export']);

    // The same export read by GET: what the count would have shown.
    const get = await fetch(exportUrl(), { headers: q.auth(auditor) });
    expect((await get.text()).trim().split('\n')).toHaveLength(streams * perStream);
    expect(exportReads).toBe(streams * perStream);
  });
});
