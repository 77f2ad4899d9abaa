import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { comparePositions, formatPosition, parsePosition, START, type Position } from '../../src/application/ports/position.js';
import { eventCountsProjection, readEventCounts } from '../../src/projections/event-counts/event-counts.projection.js';
import { CheckpointClaims } from '../../src/projections/runtime/checkpoint-claims.js';
import { claimBatch, ensureGeneration, readHeldCheckpoint, takeGeneration } from '../../src/projections/runtime/projection-checkpoints.queries.js';
import { generationLockKey } from '../../src/projections/runtime/projection-lock.js';
import { defineProjection, type Projection } from '../../src/projections/runtime/projection.js';
import { checkpointChannel, hasProcessed, parseCheckpointNotification } from '../../src/projections/runtime/wait-for-position.js';
import type { CheckpointRow } from '../../src/projections/runtime/projection-checkpoints.table.js';
import { activeCheckpoint, appendEvents, checkpointsOf, countsInLog, createHarness, createRuntime, eventually, losingAnswers, onlyPrefix, type Harness } from './support/runtime-harness.js';
import { sleep } from '../../src/application/sleep.js';

/**
 * The runtime against real PostgreSQL and the PostgreSQL event store. Each test uses its own
 * projection names and stream prefixes, so one database serves the file.
 */
let harness: Harness;

beforeAll(async () => {
  harness = await createHarness();
});

afterAll(async () => {
  await harness.close();
});

/** Backend pid of the session holding generation 1's lock. */
async function lockHolder(name: string): Promise<number> {
  const key = BigInt.asUintN(64, generationLockKey(name, 1));
  const { rows } = await harness.pool.query<{ pid: number }>(
    `select pid from pg_locks where locktype = 'advisory' and granted and objsubid = 1
       and classid = $1::oid and objid = $2::oid`,
    [(key >> 32n).toString(), (key & 0xffffffffn).toString()],
  );
  const pid = rows[0]?.pid;
  if (pid === undefined) throw new Error(`nobody holds ${name}'s lock`);
  return pid;
}

/** The other key a lock session holds: the one only it ever takes, which fences its writes. */
async function sessionKeyOf(pid: number, name: string): Promise<bigint> {
  const key = BigInt.asUintN(64, generationLockKey(name, 1));
  const { rows } = await harness.pool.query<{ high: string; low: string }>(
    `select classid::text as high, objid::text as low from pg_locks where locktype = 'advisory' and granted and objsubid = 1
       and pid = $1 and not (classid = $2::oid and objid = $3::oid)`,
    [pid, (key >> 32n).toString(), (key & 0xffffffffn).toString()],
  );
  const row = rows[0];
  if (!row || rows.length !== 1) throw new Error(`session ${pid} holds ${rows.length} other keys`);
  return BigInt.asIntN(64, (BigInt(row.high) << 32n) | BigInt(row.low));
}

describe('projection runtime', () => {
  it('commits every batch with its checkpoint, and counts each event exactly once', async () => {
    const projection = eventCountsProjection({ name: 'batches', eventTypes: ['Counted'] });
    const { counts, last } = await appendEvents(harness.store, { streams: 5, perStream: 60, prefix: 'batches' });
    // Events this projection ignores still move its checkpoint: readers may wait for them.
    const ignored = await appendEvents(harness.store, { streams: 1, perStream: 5, prefix: 'batches_ignored', type: 'Other' });
    const runtime = harness.startRuntime([projection]);

    await eventually(() => harness.reached('batches', ignored.last), 10_000, 'the checkpoint to pass the ignored events');
    expect(await readEventCounts(harness.db, 'batches')).toEqual(counts);
    const checkpoint = await activeCheckpoint(harness.db, 'batches');
    expect(checkpoint).toMatchObject({ status: 'running', generation: 1, eventsProcessed: 305n, position: formatPosition(ignored.last) });
    expect(parsePosition(checkpoint?.position ?? '')).toBeDefined();
    expect(hasProcessed(parsePosition(checkpoint?.position ?? ''), last)).toBe(true);

    const [status] = runtime.status();
    expect(status).toMatchObject({ name: 'batches', state: 'running', eventsProcessed: 305, position: formatPosition(ignored.last) });
    // 305 events in batches of at most 100.
    expect(status?.batchesCommitted).toBeGreaterThanOrEqual(4);
    expect(status?.lastBatchDurationMs).toBeGreaterThan(0);
    expect(status?.eventsPerSecond).toBeGreaterThan(0);
    expect(status?.lagMs).toBeGreaterThanOrEqual(0);
    await runtime.stop();
  });

  it('resumes from its checkpoint after a restart without applying any event twice', async () => {
    const projection = eventCountsProjection({ name: 'restarts', eventTypes: ['Counted'] });
    const first = await appendEvents(harness.store, { streams: 3, perStream: 40, prefix: 'restarts' });
    const one = harness.startRuntime([projection]);
    await eventually(() => harness.reached('restarts', first.last), 10_000, 'the first run to catch up');
    await one.stop();

    const second = await appendEvents(harness.store, { streams: 3, perStream: 30, prefix: 'restarts' });
    const two = harness.startRuntime([projection]);
    await eventually(() => harness.reached('restarts', second.last), 10_000, 'the second run to catch up');
    // Stopping in the middle of a stream of appends, then starting again, changes nothing either.
    const appending = appendEvents(harness.store, { streams: 3, perStream: 50, prefix: 'restarts' });
    await sleep(30);
    await two.stop();
    const third = await appending;
    const three = harness.startRuntime([projection]);
    await eventually(() => harness.reached('restarts', third.last), 10_000, 'the third run to catch up');

    const counts = onlyPrefix(await readEventCounts(harness.db, 'restarts'), 'restarts');
    expect([...counts.values()]).toEqual([120, 120, 120]);
    expect((await activeCheckpoint(harness.db, 'restarts'))?.eventsProcessed).toBeGreaterThanOrEqual(360n);
    await three.stop();
  });

  it('stops only the projection whose handler keeps failing, with the error and event on record', async () => {
    let poisonPosition: Position | undefined;
    let fixed = false;
    const failing = eventCountsProjection({
      name: 'poisoned',
      eventTypes: ['Counted'],
      // Throws after its rows are written: they must roll back with the batch.
      afterApply: async (events) => {
        const poison = events.find((event) => event.data.poison === true);
        if (poison && !fixed) {
          poisonPosition = poison.position;
          throw new Error(`cannot count event ${poison.id}`);
        }
      },
    });
    const healthy = eventCountsProjection({ name: 'healthy', eventTypes: ['Counted'] });
    const runtime = harness.startRuntime([failing, healthy]);
    const before = await appendEvents(harness.store, { streams: 1, perStream: 10, prefix: 'poison' });
    const poison = await appendEvents(harness.store, { streams: 1, perStream: 1, prefix: 'poison', data: () => ({ poison: true }) });
    const after = await appendEvents(harness.store, { streams: 1, perStream: 10, prefix: 'poison' });

    const failed = await eventually(async () => {
      const row = await activeCheckpoint(harness.db, 'poisoned');
      return row?.status === 'failed' && row;
    }, 10_000, 'the projection to fail');
    expect(poisonPosition).toEqual(poison.last);
    expect(failed.lastFailure).toMatchObject({
      eventPosition: formatPosition(poison.last),
      eventType: 'Counted',
      error: expect.stringContaining('cannot count event'),
    });
    // Everything before the poison was committed; nothing of it or after it.
    expect(failed.position).toBe(formatPosition(before.last));
    expect(onlyPrefix(await readEventCounts(harness.db, 'poisoned'), 'poison')).toEqual(new Map([['poison-0', 10]]));
    expect(runtime.status().find((status) => status.name === 'poisoned')).toMatchObject({
      state: 'failed',
      lastError: { eventType: 'Counted', position: formatPosition(poison.last) },
    });

    // The other projection went on, and goes on.
    await eventually(() => harness.reached('healthy', after.last), 10_000, 'the healthy projection');
    const more = await appendEvents(harness.store, { streams: 1, perStream: 5, prefix: 'poison' });
    await eventually(() => harness.reached('healthy', more.last), 10_000, 'the healthy projection to go on');
    expect(onlyPrefix(await readEventCounts(harness.db, 'healthy'), 'poison')).toEqual(new Map([['poison-0', 26]]));
    expect((await activeCheckpoint(harness.db, 'poisoned'))?.position).toBe(formatPosition(before.last));

    // Once the cause is fixed, a restart resumes from the failed event; the record stays visible.
    fixed = true;
    runtime.restart('poisoned');
    await eventually(() => harness.reached('poisoned', more.last), 10_000, 'the fixed projection to catch up');
    expect(onlyPrefix(await readEventCounts(harness.db, 'poisoned'), 'poison')).toEqual(new Map([['poison-0', 26]]));
    expect(await activeCheckpoint(harness.db, 'poisoned')).toMatchObject({
      status: 'running',
      lastFailure: { eventPosition: formatPosition(poison.last) },
    });
    await runtime.stop();
  });

  it('records a migration that throws as a failure, without retrying it in a loop', async () => {
    let tries = 0;
    const broken = defineProjection({
      name: 'unmigratable',
      version: 1,
      eventTypes: ['Counted'],
      migrate: async () => {
        tries += 1;
        throw new Error('syntax error at or near "tabel"');
      },
      apply: async () => undefined,
    });
    const runtime = harness.startRuntime([broken]);
    const failed = await eventually(async () => {
      const row = await activeCheckpoint(harness.db, 'unmigratable');
      return row?.status === 'failed' && row;
    }, 10_000, 'the failure to be recorded');
    expect(failed.lastFailure).toMatchObject({ error: expect.stringContaining('tabel'), eventPosition: null });
    await sleep(300);
    expect(tries).toBe(1);
    expect(runtime.status()[0]?.state).toBe('failed');
    await runtime.stop();
  });

  it('runs one instance per projection across runtimes, and hands over when the active one stops', async () => {
    const projection = eventCountsProjection({ name: 'handover', eventTypes: ['Counted'] });
    const first = harness.startRuntime([projection]);
    await eventually(async () => first.status()[0]?.state === 'running', 10_000, 'the first instance to run');
    const second = harness.startRuntime([projection]);
    const batch1 = await appendEvents(harness.store, { streams: 2, perStream: 20, prefix: 'handover' });
    await eventually(() => harness.reached('handover', batch1.last), 10_000, 'the first instance to project');
    expect(first.status()[0]).toMatchObject({ state: 'running', eventsProcessed: expect.any(Number) });
    expect(second.status()[0]).toMatchObject({ state: 'standby', eventsProcessed: 0 });

    const stopped = Date.now();
    await first.stop();
    await eventually(async () => second.status()[0]?.state === 'running', 5000, 'the second instance to take over');
    expect(Date.now() - stopped).toBeLessThan(3000);
    const batch2 = await appendEvents(harness.store, { streams: 2, perStream: 20, prefix: 'handover' });
    await eventually(() => harness.reached('handover', batch2.last), 10_000, 'the second instance to project');
    expect(onlyPrefix(await readEventCounts(harness.db, 'handover'), 'handover')).toEqual(
      new Map([['handover-0', 40], ['handover-1', 40]]),
    );
    await second.stop();
  });

  it('takes over from an instance whose lock session died, and the dead session can no longer write', async () => {
    const projection = eventCountsProjection({
      name: 'fenced',
      eventTypes: ['Counted'],
      afterApply: () => sleep(5),
    });
    const first = harness.startRuntime([projection]);
    await eventually(async () => first.status()[0]?.state === 'running', 10_000, 'the first instance to run');
    const second = harness.startRuntime([projection]);
    await eventually(async () => second.status()[0]?.state === 'standby', 10_000, 'the second instance to wait');
    const holder = await lockHolder('fenced');
    const holderKey = await sessionKeyOf(holder, 'fenced');

    // What a crashed process or a network cut looks like to PostgreSQL: the session is gone.
    const appending = appendEvents(harness.store, { streams: 2, perStream: 100, prefix: 'fenced' });
    await harness.pool.query('select pg_terminate_backend($1)', [holder]);
    const { last } = await appending;
    // Either instance may win the lock back; exactly one runs, on a new session.
    await eventually(async () => {
      const states = [first, second].map((runtime) => runtime.status()[0]?.state);
      return states.filter((state) => state === 'running').length === 1 && states.includes('standby');
    }, 5000, 'one instance to take over');
    expect(await lockHolder('fenced')).not.toBe(holder);
    await eventually(() => harness.reached('fenced', last), 10_000, 'the new holder to catch up');
    expect(onlyPrefix(await readEventCounts(harness.db, 'fenced'), 'fenced')).toEqual(new Map([['fenced-0', 100], ['fenced-1', 100]]));

    // The fence itself: a write on behalf of a session that holds no lock is refused.
    const moved = await harness.db.transaction().execute((trx) =>
      claimBatch(trx, { name: 'fenced', generation: 1, sessionKey: holderKey }, {
        position: last,
        events: 0,
        lastEventRecordedAt: new Date(),
        now: new Date(),
        activate: false,
      }),
    );
    expect(moved).toBe(false);
    await Promise.all([first.stop(), second.stop()]);
  });

  it('stops cleanly after committing the batch in progress', async () => {
    const projection = eventCountsProjection({
      name: 'aborted',
      eventTypes: ['Aborted'],
      afterApply: () => sleep(100),
    });
    await appendEvents(harness.store, { streams: 2, perStream: 200, prefix: 'aborted', type: 'Aborted' });
    const runtime = harness.startRuntime([projection], { batchSize: 50 });
    await eventually(async () => (await readEventCounts(harness.db, 'aborted')).size > 0, 10_000, 'a first batch');
    // Mid-way through a slow batch: stop() waits for its commit.
    await sleep(50);
    await runtime.stop();

    const checkpoint = await activeCheckpoint(harness.db, 'aborted');
    // The rows are exactly the events up to the checkpoint: the batch in flight committed whole.
    const upTo = parsePosition(checkpoint?.position ?? '');
    const counts = await readEventCounts(harness.db, 'aborted');
    expect(counts).toEqual(await countsInLog(harness.store, ['Aborted'], upTo));
    const counted = [...counts.values()].reduce((a, b) => a + b, 0);
    expect(counted).toBeGreaterThan(0);
    expect(counted).toBeLessThan(400);
    const open = await harness.pool.query(`select count(*)::int as n from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'`);
    expect(open.rows[0]).toEqual({ n: 0 });
  });
});

describe('a batch whose commit answer was lost', () => {
  /** Every position `name` announced, in order, while `during` runs. */
  async function announced(name: string, during: () => Promise<void>): Promise<Position[]> {
    const listener = new pg.Client(harness.url);
    await listener.connect();
    const positions: Position[] = [];
    listener.on('notification', (message) => {
      const notification = parseCheckpointNotification(message.payload ?? '');
      if (notification?.name === name) positions.push(notification.position);
    });
    await listener.query(`listen ${checkpointChannel}`);
    try {
      await during();
      await sleep(100);
    } finally {
      await listener.end();
    }
    return positions;
  }

  /** Events in the whole log up to `upTo`: what a generation's `eventsProcessed` counts. */
  async function eventsInLog(upTo: Position): Promise<bigint> {
    let events = 0n;
    for await (const event of harness.store.readAll()) {
      if (comparePositions(event.position, upTo) > 0) break;
      events += 1n;
    }
    return events;
  }

  /**
   * Runs `projection` on a connection that loses the answer to the first statement matching
   * `statement` once the projection has applied something (or at once), until it reaches `last`.
   */
  async function runLosing(projection: Projection, statement: RegExp, last: Position, lose: { now: boolean }): Promise<number> {
    const losing = losingAnswers(harness.url);
    if (lose.now) losing.loseAnswer(statement);
    armLoss = () => losing.loseAnswer(statement);
    const runtime = createRuntime({ url: harness.url, db: losing.db, revealed: harness.revealed }, [projection]);
    runtime.start();
    try {
      await eventually(() => harness.reached(projection.name, last), 10_000, 'catch-up');
    } finally {
      await runtime.stop();
      await losing.db.destroy();
    }
    return losing.lost();
  }
  let armLoss = () => {};

  it('applies the batch once, and never announces a checkpoint behind one it announced', async () => {
    let armed = false;
    const projection = eventCountsProjection({
      name: 'lost_commit',
      eventTypes: ['LostCommit'],
      afterApply: async () => {
        if (armed) return;
        armed = true;
        armLoss();
      },
    });
    const { last } = await appendEvents(harness.store, { streams: 2, perStream: 100, prefix: 'lost_commit', type: 'LostCommit' });
    let lost = 0;
    const positions = await announced('lost_commit', async () => {
      lost = await runLosing(projection, /^commit$/i, last, { now: false });
    });

    expect(lost).toBe(1);
    expect(onlyPrefix(await readEventCounts(harness.db, 'lost_commit'), 'lost_commit')).toEqual(new Map([['lost_commit-0', 100], ['lost_commit-1', 100]]));
    expect(positions.length).toBeGreaterThan(1);
    for (let index = 1; index < positions.length; index += 1) expect(comparePositions(positions[index] ?? START, positions[index - 1] ?? START)).toBeGreaterThan(0);
    const checkpoint = await activeCheckpoint(harness.db, 'lost_commit');
    expect(checkpoint?.eventsProcessed).toBe(await eventsInLog(parsePosition(checkpoint?.position ?? '') ?? START));
  });

  it('counts a batch of events the read model ignores once, when the answer to its claim was lost', async () => {
    const projection = eventCountsProjection({ name: 'lost_claim', eventTypes: ['NeverAppended'] });
    const { last } = await appendEvents(harness.store, { streams: 2, perStream: 100, prefix: 'lost_claim', type: 'LostClaim' });
    let lost = 0;
    const positions = await announced('lost_claim', async () => {
      lost = await runLosing(projection, /^\s*with claim/i, last, { now: true });
    });

    expect(lost).toBe(1);
    for (let index = 1; index < positions.length; index += 1) expect(comparePositions(positions[index] ?? START, positions[index - 1] ?? START)).toBeGreaterThan(0);
    const checkpoint = await activeCheckpoint(harness.db, 'lost_claim');
    expect(checkpoint?.eventsProcessed).toBe(await eventsInLog(parsePosition(checkpoint?.position ?? '') ?? START));
  });
});

describe('projection checkpoints in the table', () => {
  it('records a generation per projection, active', async () => {
    const rows = await checkpointsOf(harness.db, 'batches');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ generation: 1, version: 1, active: true });
  });
});

describe('fencing', () => {
  /** A session holding a key of its own, as a lock session does. */
  async function session(): Promise<{ key: bigint; end(): Promise<void> }> {
    const client = new pg.Client(harness.url);
    await client.connect();
    const key = BigInt(Math.floor(Math.random() * 2 ** 48)) + 1n;
    await client.query('select pg_advisory_lock($1::bigint)', [key.toString()]);
    return { key, end: () => client.end() };
  }

  const update = (commit: bigint) => ({ position: { commit, prepare: commit }, events: 1, lastEventRecordedAt: new Date(), now: new Date(), activate: false });

  it('moves the checkpoint only while the writer\'s session lives', async () => {
    await ensureGeneration(harness.db, 'fence_probe', 1);
    const live = await session();
    const ref = { name: 'fence_probe', generation: 1, sessionKey: live.key };
    expect(await claimBatch(harness.db, ref, update(5n))).toBe(true);
    // Forward only: a batch ending at or before the checkpoint has been committed already.
    expect(await claimBatch(harness.db, ref, update(5n))).toBe(false);
    expect(await claimBatch(harness.db, ref, update(4n))).toBe(false);
    expect(await readHeldCheckpoint(harness.db, ref)).toEqual({ commit: 5n, prepare: 5n });
    await live.end();
    expect(await readHeldCheckpoint(harness.db, ref)).toBeUndefined();
    expect(await claimBatch(harness.db, ref, update(6n))).toBe(false);
    expect((await checkpointsOf(harness.db, 'fence_probe'))[0]?.position).toBe('5.5');
  });

  it('moves the checkpoints of several projections asked in one turn in one transaction, each fenced on its own', async () => {
    const names = ['claimed_a', 'claimed_b', 'claimed_c'];
    for (const name of names) await ensureGeneration(harness.db, name, 1);
    const live = await session();
    const dead = await session();
    await dead.end();
    const listener = new pg.Client(harness.url);
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (message) => heard.push(message.payload ?? ''));
    await listener.query('listen claimed_test');
    const claims = new CheckpointClaims(harness.db);
    const notify = (name: string) => ({ channel: 'claimed_test', payload: name });
    const moved = await Promise.all([
      claims.claim({ ref: { name: 'claimed_a', generation: 1, sessionKey: live.key }, update: update(3n), notify: notify('claimed_a') }),
      claims.claim({ ref: { name: 'claimed_b', generation: 1, sessionKey: dead.key }, update: update(3n), notify: notify('claimed_b') }),
      claims.claim({ ref: { name: 'claimed_c', generation: 1, sessionKey: live.key }, update: update(3n), notify: undefined }),
    ]);
    expect(moved).toEqual([true, false, true]);
    const { rows } = await harness.pool.query<{ name: string; position: string; xmin: string }>(
      `select name, position_commit::text as position, xmin::text from projection_checkpoints where name = any($1) order by name`,
      [names],
    );
    expect(rows.map((row) => [row.name, row.position])).toEqual([['claimed_a', '3'], ['claimed_b', '0'], ['claimed_c', '3']]);
    expect(rows[0]?.xmin).toBe(rows[2]?.xmin);
    await eventually(async () => heard.length > 0, 5000, 'the notification');
    await sleep(100);
    expect(heard).toEqual(['claimed_a']);
    await listener.end();
    await live.end();
  });

  it('lets a new holder start only once a batch in flight past the fence has committed', async () => {
    await ensureGeneration(harness.db, 'fence_handover', 1);
    const previous = await session();
    let taking: Promise<CheckpointRow | undefined> | undefined;
    let settled = false;
    await harness.db.transaction().execute(async (trx) => {
      expect(await claimBatch(trx, { name: 'fence_handover', generation: 1, sessionKey: previous.key }, update(7n))).toBe(true);
      taking = takeGeneration(harness.db, 'fence_handover', 1).finally(() => (settled = true));
      await sleep(100);
      expect(settled).toBe(false);
    });
    expect((await taking)?.position_commit).toBe('7');
    await previous.end();
  });
});
