import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatPosition, type Position } from '../../src/application/ports/position.js';
import { PgCheckpointListener } from '../../src/infrastructure/projections/pg-checkpoint-listener.js';
import { eventCountsProjection } from '../../src/projections/event-counts/event-counts.projection.js';
import type { ProjectionRuntime } from '../../src/projections/runtime/projection-runtime.js';
import {
  checkpointChannel,
  hasProcessed,
  parseCheckpointNotification,
  waitForPosition,
  type CheckpointNotification,
} from '../../src/projections/runtime/wait-for-position.js';
import { appendEvents, createHarness, createRuntime, eventually, type Harness } from './support/runtime-harness.js';

let harness: Harness;
let listener: PgCheckpointListener;
let runtime: ProjectionRuntime;

beforeAll(async () => {
  harness = await createHarness();
  listener = new PgCheckpointListener({ connectionString: harness.url });
  await listener.start();
  runtime = createRuntime(harness, [eventCountsProjection({ name: 'listened', eventTypes: ['Counted'] })]);
  runtime.start();
});

afterAll(async () => {
  await runtime.stop();
  await listener.close();
  await harness.close();
});

describe('checkpoint notifications', () => {
  it('announces each committed batch on the projection_checkpoint channel to a plain LISTEN client', async () => {
    const client = new pg.Client(harness.url);
    await client.connect();
    const heard: string[] = [];
    client.on('notification', (message) => {
      if (message.channel === checkpointChannel && message.payload) heard.push(message.payload);
    });
    await client.query(`listen ${checkpointChannel}`);
    try {
      const { last } = await appendEvents(harness.store, { streams: 2, perStream: 5, prefix: 'plain' });
      const payload = await eventually(async () => heard.find((p) => p === `listened:${formatPosition(last)}`), 10_000, 'the notification');
      expect(parseCheckpointNotification(payload)).toEqual({ name: 'listened', position: last });
    } finally {
      await client.end();
    }
  });

  it('waitForPosition answers as soon as the projection has committed the position', async () => {
    const heard: CheckpointNotification[] = [];
    const unsubscribe = listener.subscribe((notification) => heard.push(notification));
    const { last } = await appendEvents(harness.store, { streams: 1, perStream: 3, prefix: 'waited' });
    const started = Date.now();
    const done = await waitForPosition({
      db: harness.db,
      notifications: listener,
      projections: ['listened'],
      position: last,
      timeoutMs: 5000,
      pollMs: 10_000,
    });
    unsubscribe();
    expect(done).toBe(true);
    // Woken by the notification, not by the (here very slow) re-read.
    expect(Date.now() - started).toBeLessThan(2000);
    expect(heard.some((n) => n.name === 'listened' && hasProcessed(n.position, last))).toBe(true);
  });

  it('waitForPosition gives up after its timeout for a position not reached, or an unknown projection', async () => {
    const future: Position = { commit: 2n ** 62n, prepare: 0n };
    const options = { db: harness.db, notifications: listener, position: future, timeoutMs: 150, pollMs: 50 };
    expect(await waitForPosition({ ...options, projections: ['listened'] })).toBe(false);
    expect(await waitForPosition({ ...options, projections: ['no_such_projection'] })).toBe(false);
  });

  it('tells which connection it listens on: none while it is down, a new one after each reconnect', async () => {
    const listeners = async () => {
      const { rows } = await sql<{ pid: number }>`select pid from pg_stat_activity where application_name = 'checkpoint-listener'`.execute(harness.db);
      return new Set(rows.map(({ pid }) => pid));
    };
    const others = await listeners();
    // Long enough a reconnect delay for the poll below to see it down.
    const own = new PgCheckpointListener({ connectionString: harness.url, reconnectMs: 400 });
    expect(own.epoch).toBeUndefined();
    await own.start();
    try {
      const first = own.epoch;
      expect(first).toEqual(expect.any(Number));
      const ownPids = [...(await listeners())].filter((pid) => !others.has(pid));
      expect(ownPids).toHaveLength(1);
      await sql`select pg_terminate_backend(${ownPids[0]}::int)`.execute(harness.db);
      await eventually(async () => (own.epoch === undefined ? true : undefined), 5000, 'the listener to notice');
      const second = await eventually(async () => own.epoch, 5000, 'the reconnect');
      expect(second).not.toBe(first);
    } finally {
      await own.close();
    }
    expect(own.epoch).toBeUndefined();
  });

  it('parses only payloads it could have sent', () => {
    expect(parseCheckpointNotification('a_b:12.3')).toEqual({ name: 'a_b', position: { commit: 12n, prepare: 3n } });
    expect(parseCheckpointNotification('nothing')).toBeUndefined();
    expect(parseCheckpointNotification(':1.1')).toBeUndefined();
    expect(parseCheckpointNotification('a:1')).toBeUndefined();
  });
});
