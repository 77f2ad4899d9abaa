// Soak test: `npm run soak -- --minutes N` (default 10, fractions allowed). Runs the command,
// query and projector roles as separate processes on one PostgreSQL (embedded, or DATABASE_URL,
// or a throwaway database on TEST_DATABASE_URL's server) and a stand-in for Stripe, drives mixed
// load for N minutes (bookings, payments through signed webhooks, cancellations, appointments and
// reschedules, reads with Consistency-Position), rebuilds a read model half-way and SIGKILLs the
// projector twice, the second time while the rebuild is under way. Then it lets everything settle
// and checks the outcome; one line per figure or check, PASS or FAIL last, exit code 1 on any
// failure. Every server listens on 127.0.0.1 only. `--deadline-seconds S` gives up after S
// seconds in all; then, or on SIGTERM or SIGINT, it prints FAIL with what it was waiting for,
// stops the services and drops its throwaway database. A run that fails keeps its evidence first:
// the logs, and the event log, read models and checkpoints dumped beside them.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { formatPosition, parsePosition, START } from '../src/application/ports/position.js';
import { createKysely, createPool } from '../src/infrastructure/postgres/database.js';
import { readModelProjections } from '../src/projections/read-models.js';
import { listCheckpoints, readActivePositions, type CheckpointView } from '../src/projections/runtime/projection-checkpoints.queries.js';
import { FakeStripeServer } from '../tests/stripe/support/fake-stripe-server.js';
import { token } from './support/bench-auth.js';
import { benchDatabase } from './support/bench-database.js';
import { checkEventsExactlyOnce, checkLoadExercised, checkNoDoubleBooking, checkOf, checkReadModelsEqualRebuild, logHead, projectionsReached, settle, type Check } from './support/soak-checks.js';
import { dumpEvidence } from './support/soak-evidence.js';
import { judgeNotCaughtUp, laggingProjections, notCaughtUpGraceMs, stepsAfterLoad, type ChaosStep } from './support/soak-chaos.js';
import { Ledger, nextJourney, seedWorld, type LoadContext } from './support/soak-load.js';
import { rssCheck } from './support/soak-memory.js';
import { MemorySampler, SoakServices, type Gauge, type Role } from './support/soak-services.js';
import { Traffic } from './support/soak-traffic.js';
import { sleep } from '../src/application/sleep.js';

const optionsSchema = z.object({
  minutes: z.coerce.number().positive().max(24 * 60).default(10),
  /** Users acting at once, each one journey after another. */
  concurrency: z.coerce.number().int().min(1).max(200).default(8),
  /** Gives up after this long in all (FAIL, with what it was waiting for), cleaning up as on SIGTERM. */
  deadlineSeconds: z.coerce.number().positive().optional(),
});

const webhookSecret = 'whsec_soak_0123456789abcdef';
const rebuiltMidway = 'bookings';
const names = readModelProjections.map((projection) => projection.name);

/** Progress lines; none once the run is abandoned (a deadline or a signal), whose FAIL line says it all. */
const output = { open: true };
const print = (line: string) => {
  if (output.open) console.log(line);
};
/** Lines about the run's end, printed whatever happened. */
const say = (line: string) => console.log(line);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const fmt = (n: number) => n.toLocaleString('en-US');

function parseOptions(): z.infer<typeof optionsSchema> {
  const { values } = parseArgs({ options: { minutes: { type: 'string' }, concurrency: { type: 'string' }, 'deadline-seconds': { type: 'string' } } });
  return optionsSchema.parse({ minutes: values.minutes, concurrency: values.concurrency, deadlineSeconds: values['deadline-seconds'] });
}

/**
 * When the chaos happens, in ms from the start of the load. The second kill waits for the
 * rebuild to be under way, but no later than `secondKillLatest`.
 */
function timeline(loadMs: number) {
  return { firstKill: loadMs * 0.3, rebuild: loadMs * 0.5, secondKillLatest: loadMs * 0.6 };
}

/** What the soak is waiting for now (and what the chaos beside the load is), for the FAIL line of a deadline or a signal. */
class Waiting {
  on = 'the start';
  chaos: string | undefined;
  describe(): string {
    return this.chaos === undefined ? this.on : `${this.on}; chaos: ${this.chaos}`;
  }
}

/** Waits until every read model has processed what the log held when asked. */
async function caughtUp(db: Kysely<unknown>, timeoutMs: number): Promise<number | undefined> {
  const head = await logHead(db);
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await projectionsReached(db, names, head)) return performance.now() - started;
    await sleep(100);
  }
  return undefined;
}

type Chaos = { readonly lines: string[]; readonly problems: string[]; readonly steps: ChaosStep[] };

/**
 * Kills the projector, asks for one rebuild, and kills the projector again once the rebuild is
 * under way; says how each went, and records when each began and recovered (what excuses a read
 * that timed out meanwhile). Gives up when a service process dies by itself (the run has
 * failed, and there is nothing to learn) or the soak is stopping.
 */
async function runChaos(run: Run, at: ReturnType<typeof timeline>, since: number, waiting: Waiting): Promise<Chaos> {
  const { services, db } = run;
  const chaos: Chaos = { lines: [], problems: [], steps: [] };
  const now = () => performance.now() - since;
  const crashed = () => services.unexpectedExits.length > 0 || services.stopped;
  const reached = async (ms: number) => {
    waiting.chaos = `its next step at ${seconds(ms)}`;
    while (!crashed() && performance.now() - since < ms) await sleep(Math.min(250, ms - (performance.now() - since)));
    return !crashed();
  };
  /** `whileDown` looks at what the dead process left, and says so in the line. */
  const kill = async (n: number, whileDown: () => Promise<string> = async () => '') => {
    const killedAt = now();
    let left = '';
    waiting.chaos = `the projector to start again after SIGKILL ${n}`;
    await services.killAndRestartProjector(async () => {
      left = await whileDown();
    });
    waiting.chaos = `the read models to reach the log head after SIGKILL ${n}`;
    const back = await caughtUp(db, 60_000);
    chaos.steps.push({ what: `projector SIGKILL ${n}`, kind: 'projector-kill', startedMs: killedAt, recoveredMs: now() });
    if (back === undefined) chaos.problems.push(`projector restart ${n}: read models not back at the log head within 60 s`);
    chaos.lines.push(`chaos: projector SIGKILL ${n} at ${seconds(killedAt)}${left}, restarted; read models back at the log head in ${back === undefined ? 'never' : seconds(back)}`);
  };
  if (!(await reached(at.firstKill))) return chaos;
  await kill(1);
  if (!(await reached(at.rebuild))) return chaos;
  const requestedAt = now();
  const rebuildStep = (recoveredMs: number) => chaos.steps.push({ what: `rebuild of ${rebuiltMidway}`, kind: 'rebuild', startedMs: requestedAt, recoveredMs });
  const generation = await rebuild(run.traffic, run.adminToken, rebuiltMidway);
  chaos.lines.push(`chaos: rebuild of ${rebuiltMidway} requested at ${seconds(requestedAt)} as generation ${generation ?? '?'}`);
  if (generation === undefined) {
    chaos.problems.push(`the rebuild of ${rebuiltMidway} was refused`);
    rebuildStep(now());
    if (await reached(at.secondKillLatest)) await kill(2);
    return chaos;
  }
  // The second kill lands while the new generation is being written and not yet active, so that
  // the new process must resume the rebuild from its checkpoint and swap it in.
  waiting.chaos = `${rebuiltMidway} generation ${generation} to start (the second kill waits for it)`;
  const progress = await rebuildProgress(db, generation, since + at.secondKillLatest, crashed);
  if (crashed()) return chaos;
  if (progress.state !== 'under way') {
    chaos.lines.push(
      progress.state === 'active'
        ? `chaos: ${rebuiltMidway} generation ${generation} was swapped in before its progress could be seen; the second kill lands after the rebuild`
        : `chaos: ${rebuiltMidway} generation ${generation} had not moved by ${seconds(at.secondKillLatest)}; the second kill lands before the rebuild began`,
    );
  }
  await kill(2, async () => {
    const row = await generationRow(db, generation);
    if (!row) return `, ${rebuiltMidway} generation ${generation} not found`;
    return row.active
      ? `, after ${rebuiltMidway} generation ${generation} was swapped in`
      : `, during the rebuild: ${rebuiltMidway} generation ${generation} left at ${row.position}, not active, for the new process to resume`;
  });
  waiting.chaos = `${rebuiltMidway} generation ${generation} to be swapped in`;
  const swappedAt = await swappedIn(db, generation, since, performance.now() + 120_000, crashed);
  rebuildStep(swappedAt ?? now());
  if (swappedAt === undefined) chaos.problems.push(`${rebuiltMidway} generation ${generation} not swapped in within 120 s of the second kill`);
  else chaos.lines.push(`chaos: ${rebuiltMidway} generation ${generation} swapped in by ${seconds(swappedAt)}`);
  waiting.chaos = undefined;
  return chaos;
}

async function generationRow(db: Kysely<unknown>, generation: number): Promise<CheckpointView | undefined> {
  return (await listCheckpoints(db)).find((row) => row.name === rebuiltMidway && row.generation === generation);
}

/**
 * Watches generation `generation` of the rebuilt read model until its checkpoint has moved past
 * the first event while it is not yet active (`under way`), it is active (the rebuild finished
 * between two looks), or `untilMs` (`performance.now()`) passes first.
 */
async function rebuildProgress(db: Kysely<unknown>, generation: number, untilMs: number, stop: () => boolean): Promise<{ state: 'under way' | 'active' | 'not started' }> {
  while (performance.now() < untilMs && !stop()) {
    const row = await generationRow(db, generation);
    if (row?.active) return { state: 'active' };
    if (row && row.position !== formatPosition(START)) return { state: 'under way' };
    await sleep(10);
  }
  return { state: 'not started' };
}

/** When (ms since the load began) generation `generation` of the rebuilt read model went live; `undefined` if `untilMs` passed first. */
async function swappedIn(db: Kysely<unknown>, generation: number, since: number, untilMs: number, stop: () => boolean): Promise<number | undefined> {
  while (performance.now() < untilMs && !stop()) {
    const rows = await listCheckpoints(db);
    if (rows.some((row) => row.name === rebuiltMidway && row.active && row.generation >= generation)) return performance.now() - since;
    await sleep(250);
  }
  return undefined;
}

async function rebuild(traffic: Traffic, adminToken: string, name: string): Promise<number | undefined> {
  const reply = await traffic.send({ api: 'command', method: 'POST', route: 'POST /v1/admin/projections/:name/rebuild', path: `/v1/admin/projections/${name}/rebuild`, bearer: adminToken, body: {} });
  const accepted = z.object({ generation: z.number().int() }).safeParse(reply?.json);
  return reply?.status === 202 && accepted.success ? accepted.data.generation : undefined;
}

/**
 * `concurrency` users, each running journeys back to back until the end of the load, or until a
 * service process dies under them (nobody killed it on purpose: the run has failed already).
 */
async function drive(ctx: LoadContext, services: SoakServices, concurrency: number, untilMs: number): Promise<void> {
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < untilMs && services.unexpectedExits.length === 0 && !services.stopped) {
        try {
          await nextJourney(ctx);
        } catch (error) {
          ctx.ledger.violations.push(`a journey threw: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    }),
  );
}

/** Each role's memory over the run, one median per tenth: the curve a single growth figure hides. */
function printMemory(memory: MemorySampler, loadMs: number): void {
  const curves: [Role, Gauge, string][] = [
    ['command', 'rss', 'RSS'],
    ['command', 'heap', 'V8 heap used'],
    ['command', 'external', 'external memory'],
    ['query', 'rss', 'RSS'],
    ['query', 'heap', 'V8 heap used'],
    ['query', 'external', 'external memory'],
    ['query', 'cache', 'query cache'],
    ['projector', 'rss', 'RSS'],
  ];
  for (const [role, gauge, label] of curves) {
    const tenths = Array.from({ length: 10 }, (_, i) => memory.median(role, gauge, (loadMs * i) / 10, (loadMs * (i + 1)) / 10)?.toFixed(0) ?? '?');
    print(`${label} of ${role} (MB, each tenth of the run): ${tenths.join(' ')}`);
  }
}

function report(check: Check): void {
  print(`check ${check.ok ? 'PASS' : 'FAIL'}: ${check.name}: ${check.summary}`);
  for (const problem of check.problems.slice(0, 20)) print(`  ${problem}`);
  if (check.problems.length > 20) print(`  … and ${check.problems.length - 20} more`);
}

type Run = { readonly services: SoakServices; readonly db: Kysely<unknown>; readonly traffic: Traffic; readonly adminToken: string };
type Outcome = { readonly ledger: Ledger; readonly memory: MemorySampler; readonly chaos: Chaos; readonly since: number; readonly loadEndedMs: number };

/** The load, with the chaos beside it; memory sampled throughout. */
async function soak(run: Run, ctx: LoadContext, options: z.infer<typeof optionsSchema>, waiting: Waiting): Promise<Outcome> {
  const loadMs = options.minutes * 60_000;
  const since = performance.now();
  const memory = new MemorySampler(run.services, since);
  memory.start();
  const chaos = runChaos(run, timeline(loadMs), since, waiting);
  // Awaited after the load; a step refused meanwhile (a signal stopping the soak during a kill)
  // would otherwise be an unhandled rejection, ending the process before its clean-up.
  chaos.catch(() => undefined);
  waiting.on = `the load to end (${options.concurrency} users for ${seconds(loadMs)}), and the chaos beside it`;
  await drive(ctx, run.services, options.concurrency, since + loadMs);
  waiting.on = 'the chaos to end after the load';
  const loadEndedMs = performance.now() - since;
  memory.stop();
  const done = await chaos;
  // The window ends when users stop starting journeys (sooner only if they all stopped early).
  done.problems.push(...stepsAfterLoad(done.steps, Math.min(loadMs, loadEndedMs)));
  return { ledger: ctx.ledger, memory, chaos: done, since, loadEndedMs };
}

function printLoad(traffic: Traffic, outcome: Outcome): void {
  const { ledger, loadEndedMs } = outcome;
  const rate = (traffic.requests / (loadEndedMs / 1000)).toFixed(1);
  print(`load: ${fmt(traffic.requests)} requests in ${seconds(loadEndedMs)} (${rate} req/s), ${fmt(ledger.accepted.length)} commands accepted, ${fmt(ledger.webhookDeliveries)} webhook deliveries accepted`);
  for (const line of traffic.summary()) print(`  ${line}`);
  const { reschedules, duplicateWebhooks } = ledger;
  print(
    `reschedules: ${fmt(reschedules.accepted)} accepted, ${fmt(reschedules.refused)} refused (${fmt(reschedules.undone)} of them after moving the time, moved back); ` +
      `${fmt(reschedules.toHotDay)} sent to the contended day beside a booking of the same patient at the same time: ` +
      `${fmt(reschedules.lostToBooking)} refused for the patient's time (that booking accepted), ${fmt(reschedules.bookingBesideRefused)} with that booking refused for it instead`,
  );
  print(
    `duplicate webhooks: ${fmt(duplicateWebhooks.inTurn)} delivered twice in turn, ${fmt(duplicateWebhooks.atOnce)} twice at once, ` +
      `${fmt(duplicateWebhooks.afterCancellation)} again after the paid booking was cancelled`,
  );
  for (const line of outcome.chaos.lines) print(line);
  printMemory(outcome.memory, outcome.loadEndedMs);
}

/** Every check, printed as it completes; true when all passed. */
async function verify(run: Run, outcome: Outcome, loadMs: number, waiting: Waiting): Promise<boolean> {
  const { db, traffic, services } = run;
  const { ledger, chaos } = outcome;
  waiting.on = 'the read models and the payment process to settle';
  const settleStarted = performance.now();
  const unsettled = await settle(db, names, 120_000);
  print(`settled: read models and the payment process at the log head ${formatPosition(await logHead(db))} after ${seconds(performance.now() - settleStarted)}`);
  const rebuildForCheck = async (name: string) => {
    const generation = await rebuild(traffic, run.adminToken, name);
    if (generation === undefined) throw new Error(`the rebuild of ${name} was refused`);
    waiting.on = `the rebuild of ${name} (generation ${generation}) for the comparison with the live read model`;
    return generation;
  };
  // A read that timed out waiting for its position is a missed read of one's write too, unless
  // its wait ran into a projector kill (see `judgeNotCaughtUp`).
  const waits = judgeNotCaughtUp(traffic.notCaughtUp, chaos.steps, outcome.since);
  const unexcused = waits.unexcused.map(
    (answer) =>
      `503 not-caught-up at ${seconds(answer.at - outcome.since)} (waiting since ${seconds(answer.waitStartedAt - outcome.since)}), no projector kill under way: ${answer.what}; behind then: ${answer.lagging}`,
  );
  // A few may come from a loaded machine's passing lag (CI's two cores run everything at once);
  // a projector stalled without failing answers every such read so, hundreds a minute.
  const positionReads = ledger.readYourWrites + ledger.missedWrites.length + traffic.notCaughtUp.length;
  const tolerated = Math.max(3, Math.floor(positionReads * 0.01));
  const stalled = waits.unexcused.length > tolerated ? unexcused : [];
  // Tolerated, but said: which read model was behind, and when.
  if (stalled.length === 0) for (const line of unexcused) print(`tolerated: ${line}`);
  const checks = [
    () => checkOf('no 5xx other than deliberate 503 shedding', `${traffic.failureCount} unexpected; 503 with Retry-After: ${traffic.shedSummary(outcome.since)}`, traffic.failures),
    () => checkOf('every other answer keeps the HTTP contract', 'idempotent replays, command results, payment intents, webhook deliveries answered 200', ledger.violations),
    () =>
      checkOf(
        'reads with Consistency-Position see their writes',
        `${fmt(ledger.readYourWrites)} found, ${ledger.missedWrites.length} missed; 503 not-caught-up (any read waiting on a position): ` +
          `${waits.excused.length} excused (waiting into a projector kill, or from before ${seconds(notCaughtUpGraceMs)} after the restarted projector caught up), ` +
          `${waits.unexcused.length} unexcused (at most ${tolerated} tolerated)`,
        [...ledger.missedWrites, ...stalled],
      ),
    () => checkOf('projector killed twice, rebuild swapped in, all settled', `${chaos.steps.length} of 3 chaos steps done`, [...chaos.problems, ...unsettled]),
    () => checkLoadExercised(ledger, { requests: traffic.requests, overloaded: traffic.shedCount('overloaded') }),
    () => checkEventsExactlyOnce(db, ledger),
    () => checkNoDoubleBooking(db),
    () => checkReadModelsEqualRebuild(db, names, rebuildForCheck, print),
    () => rssCheck(outcome.memory, loadMs),
    async () => checkOf('every process stops cleanly on SIGTERM', 'exit code 0', await services.stopAll()),
  ];
  let passed = true;
  for (const [i, next] of checks.entries()) {
    waiting.on = `check ${i + 1} of ${checks.length}`;
    const check = await next();
    report(check);
    passed &&= check.ok;
  }
  return passed;
}

/** What `main` made, undone once, last made first: at the end, on a deadline, or on a signal. */
class Teardown {
  private readonly steps: (() => Promise<unknown>)[] = [];
  private done: Promise<void> | undefined;

  add(step: () => Promise<unknown>): void {
    this.steps.unshift(step);
  }

  run(): Promise<void> {
    this.done ??= (async () => {
      for (const step of this.steps) {
        await step().catch((error: unknown) => say(`cleanup: ${error instanceof Error ? error.message : String(error)}`));
      }
    })();
    return this.done;
  }
}

/** Which read models had not reached `position` (a `Consistency-Position`) as of now. */
async function lagging(db: Kysely<unknown>, position: string): Promise<string> {
  const asked = parsePosition(position);
  return asked ? laggingProjections(await readActivePositions(db, names), asked, names) : '?';
}

async function main(options: z.infer<typeof optionsSchema>, teardown: Teardown, waiting: Waiting): Promise<boolean> {
  let passed = false;
  waiting.on = 'the database';
  const workDir = await mkdtemp(path.join(tmpdir(), 'soak-'));
  // The processes' logs are what a failure is explained by; a clean run leaves nothing behind.
  teardown.add(async () => (passed ? rm(workDir, { recursive: true, force: true }) : say(`logs kept in ${workDir}`)));
  // Dropped by the teardown even when a signal comes while it is being made.
  const database = await benchDatabase('soak', (stop) => teardown.add(stop));
  // Before the drop, after the services stopped (nothing appends any more): what the run left.
  teardown.add(async () => {
    if (passed) return;
    const dir = path.join(workDir, 'evidence');
    const files = await dumpEvidence(database.url, dir, names);
    say(`evidence kept in ${dir}: ${files.join(', ')}`);
  });
  const stripe = await new FakeStripeServer().start();
  teardown.add(() => stripe.stop());
  const pool = createPool(database.url, 4);
  const db = createKysely<unknown>(pool);
  teardown.add(() => db.destroy());
  // Holds outlast the run, so nothing expires by itself while the checks look.
  const holdMinutes = Math.ceil(options.minutes) + 60;
  const services = await SoakServices.create({
    databaseUrl: database.url,
    workDir,
    env: {
      STRIPE_SECRET_KEY: 'sk_test_fake',
      STRIPE_WEBHOOK_SECRET: webhookSecret,
      STRIPE_API_BASE: stripe.apiBase.origin,
      BOOKING_HOLD_MINUTES: String(holdMinutes),
    },
  });
  teardown.add(() => services.stopAll());
  waiting.on = 'the command, query and projector processes to be ready';
  await services.start();
  print(`soak: ${options.minutes} min, ${options.concurrency} users, command + query + projector processes, logs in ${workDir}`);
  const traffic = new Traffic({ command: services.url('command'), query: services.url('query') }, (position) => lagging(db, position));
  waiting.on = 'the seed (listings and doctors\' schedules)';
  const world = await seedWorld(traffic, { listings: 40, doctors: 20 });
  waiting.on = 'the read models to catch up with the seed';
  if ((await caughtUp(db, 60_000)) === undefined) throw new Error('the read models never caught up with the seed');
  const run: Run = { services, db, traffic, adminToken: token(world.adminId, ['ADMIN']) };
  const outcome = await soak(run, { traffic, ledger: new Ledger(), world, stripe, webhookSecret }, options, waiting);
  printLoad(traffic, outcome);
  const crashed = checkOf('every service process stayed up', 'nothing but the two projector kills', services.unexpectedExits);
  if (!crashed.ok) report(crashed);
  passed = crashed.ok && (await verify(run, outcome, options.minutes * 60_000, waiting));
  waiting.on = 'the cleanup';
  return passed;
}

/**
 * Runs the soak; on a signal or past the deadline, says FAIL and what it was waiting for, undoes
 * what it made (the service processes, the throwaway database, once its evidence is dumped) and
 * exits at once, whatever the soak was in the middle of.
 */
function start(): void {
  const options = parseOptions();
  const teardown = new Teardown();
  const waiting = new Waiting();
  let abandoned = false;
  const abandon = (why: string) => {
    if (abandoned) return;
    abandoned = true;
    say(`FAIL: ${why} while waiting for ${waiting.describe()}; stopping the services, keeping the evidence and dropping the database`);
    output.open = false;
    void teardown.run().finally(() => process.exit(1));
  };
  // Once: a second signal ends the process at once, cleanup or not.
  process.once('SIGTERM', () => abandon('SIGTERM'));
  process.once('SIGINT', () => abandon('SIGINT'));
  const deadline = options.deadlineSeconds === undefined ? undefined : setTimeout(() => abandon(`the deadline of ${options.deadlineSeconds} s passed`), options.deadlineSeconds * 1000);
  const finish = async (line: string, code: number) => {
    await teardown.run();
    clearTimeout(deadline);
    if (abandoned) return;
    say(line);
    process.exitCode = code;
  };
  main(options, teardown, waiting).then(
    (passed) => finish(passed ? 'PASS' : 'FAIL', passed ? 0 : 1),
    (error: unknown) => finish(`FAIL: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`, 1),
  );
}

start();
