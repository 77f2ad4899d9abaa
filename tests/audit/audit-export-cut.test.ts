import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Actor } from '../../src/application/metadata.js';
import type { ReadAllOptions, RecordedEvent } from '../../src/application/ports/event-store.js';
import { comparePositions, parsePosition, type Position } from '../../src/application/ports/position.js';
import { startQueryApi, type QueryApiFixture } from '../http/support/query-api.fixture.js';

// An export read the log page by page until a page came back short, so events committed while it
// streamed were in it, and nothing said where it ended: two exports of one window could differ.

const auditor: Actor = { id: 'auditor-1', roles: ['AUDITOR'] };
const prefix = `cut${randomUUID().slice(0, 8)}-`;
// More than two of the store's pages (1000 events): the read asks for a page after the appends.
const streams = 25;
const perStream = 100;

const noted = (count: number) => Array.from({ length: count }, (_, n) => ({ id: randomUUID(), type: 'Noted', data: { n }, metadata: { schemaVersion: 1 } }));

describe('the end of an audit export', () => {
  let q: QueryApiFixture;
  /** Positions of the events appended while the export streamed. */
  let appendedMeanwhile: Position[] = [];

  beforeAll(async () => {
    q = await startQueryApi();
    for (let stream = 0; stream < streams; stream++) await q.harness.store.appendToStream(`${prefix}${stream}`, noted(perStream));
    const store = q.harness.store;
    const readAll = store.readAll.bind(store);
    // The paging hook: once the export has read its first event, more events are committed.
    vi.spyOn(store, 'readAll').mockImplementation((options?: ReadAllOptions) => {
      const events = readAll(options);
      if (!options?.filter?.streamPrefixes?.includes(prefix) || appendedMeanwhile.length > 0) return events;
      return (async function* appendingMeanwhile(): AsyncGenerator<RecordedEvent> {
        let first = true;
        for await (const event of events) {
          yield event;
          if (!first) continue;
          first = false;
          const late = `${prefix}late`;
          await store.appendToStream(late, noted(10));
          const read = await store.readStream(late);
          if (read.status === 'found') for await (const appended of read.events) appendedMeanwhile.push(appended.position);
        }
      })();
    });
  });
  afterAll(() => q.close());

  it('given events committed while an export streams, when it ends, then they are not in it, and Export-Position names where it was cut: at or after its last line, before them', async () => {
    appendedMeanwhile = [];
    const response = await q.app.inject({ url: `/v1/audit/export?streamPrefix=${prefix}`, headers: q.auth(auditor) });
    expect(response.statusCode).toBe(200);
    expect(appendedMeanwhile).toHaveLength(10);

    const lines = response.body
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as { streamId: string; position: string });
    expect(lines).toHaveLength(streams * perStream);
    expect(lines.some((line) => line.streamId === `${prefix}late`)).toBe(false);

    const cut = parsePosition(String(response.headers['export-position']));
    const last = parsePosition(lines.at(-1)?.position ?? '');
    expect(cut && last && comparePositions(cut, last)).toBeGreaterThanOrEqual(0);
    const firstLate = appendedMeanwhile[0];
    expect(cut && firstLate && comparePositions(cut, firstLate)).toBe(-1);
  });

  it('given the same export asked by HEAD, then it answers Export-Position too', async () => {
    const head = await q.app.inject({ method: 'HEAD', url: `/v1/audit/export?streamPrefix=${prefix}`, headers: q.auth(auditor) });
    expect(head.statusCode).toBe(200);
    expect(parsePosition(String(head.headers['export-position']))).toBeDefined();
  });
});
