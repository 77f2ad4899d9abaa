// Soak test: `npm run soak -- --minutes N` (default 10, fractions allowed). Runs the command,
// query and projector roles as separate processes on one PostgreSQL (embedded, or DATABASE_URL,
// or a throwaway database on TEST_DATABASE_URL's server) and a stand-in for Stripe, drives mixed
// load for N minutes (bookings, payments through signed webhooks, cancellations, appointments and
// reschedules, reads with Consistency-Position), rebuilds a read model half-way and SIGKILLs the
// projector twice. Then it lets everything settle and checks the outcome; one line per figure or
// check, PASS or FAIL last, exit code 1 on any failure. Every server listens on 127.0.0.1 only.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { formatPosition } from '../src/application/ports/position.js';
import { createKysely, createPool } from '../src/infrastructure/postgres/database.js';
import { readModelProjections } from '../src/projections/read-models.js';
import { listCheckpoints } from '../src/projections/runtime/projection-checkpoints.queries.js';
import { FakeStripeServer } from '../tests/stripe/support/fake-stripe-server.js';
import { token } from './support/bench-auth.js';
import { benchDatabase } from './support/bench-database.js';
import { checkEventsExactlyOnce, checkNoDoubleBooking, checkOf, checkReadModelsEqualRebuild, logHead, projectionsReached, settle, type Check } from './support/soak-checks.js';
import { judgeNotCaughtUp, notCaughtUpGraceMs, stepsAfterLoad, type ChaosStep } from './support/soak-chaos.js';
import { Ledger, nextJourney, seedWorld, type LoadContext } from './support/soak-load.js';
import { rssCheck } from './support/soak-memory.js';
import { MemorySampler, SoakServices, type Gauge, type Role } from './support/soak-services.js';
import { Traffic } from './support/soak-traffic.js';
import { sleep } from '../src/application/sleep.js';

const optionsSchema = z.object({
  minutes: z.coerce.number().positive().max(24 * 60).default(10),
  /** Users acting at once, each one journey after another. */
  concurrency: z.coerce.number().int().min(1).max(200).default(8),
});

const webhookSecret = 'whsec_soak_0123456789abcdef';
const rebuiltMidway = 'bookings';
const names = readModelProjections.map((projection) => projection.name);

const print = (line: string) => console.log(line);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const fmt = (n: number) => n.toLocaleString('en-US');

function parseOptions(): z.infer<typeof optionsSchema> {
  const { values } = parseArgs({ options: { minutes: { type: 'string' }, concurrency: { type: 'string' } } });
  return optionsSchema.parse(values);
}

/** When the chaos happens, in ms from the start of the load. */
function timeline(loadMs: number) {
  return { firstKill: loadMs * 0.3, rebuild: loadMs * 0.5, secondKill: loadMs * 0.6 };
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
 * Kills the projector twice and asks for one rebuild, at their times; says how each went, and
 * records when each began and recovered (what excuses a read that timed out meanwhile). Gives
 * up when a service process dies by itself: the run has failed, and there is nothing to learn.
 */
async function runChaos(services: SoakServices, db: Kysely<unknown>, traffic: Traffic, adminToken: string, at: ReturnType<typeof timeline>, since: number): Promise<Chaos> {
  const chaos: Chaos = { lines: [], problems: [], steps: [] };
  const now = () => performance.now() - since;
  const crashed = () => services.unexpectedExits.length > 0;
  const reached = async (ms: number) => {
    while (!crashed() && performance.now() - since < ms) await sleep(Math.min(250, ms - (performance.now() - since)));
    return !crashed();
  };
  const kill = async (n: number) => {
    const killedAt = now();
    await services.killAndRestartProjector();
    const back = await caughtUp(db, 60_000);
    chaos.steps.push({ what: `projector SIGKILL ${n}`, startedMs: killedAt, recoveredMs: now() });
    if (back === undefined) chaos.problems.push(`projector restart ${n}: read models not back at the log head within 60 s`);
    chaos.lines.push(`chaos: projector SIGKILL ${n} at ${seconds(killedAt)}, restarted; read models back at the log head in ${back === undefined ? 'never' : seconds(back)}`);
  };
  if (!(await reached(at.firstKill))) return chaos;
  await kill(1);
  if (!(await reached(at.rebuild))) return chaos;
  const requestedAt = now();
  const rebuildStep = (recoveredMs: number) => chaos.steps.push({ what: `rebuild of ${rebuiltMidway}`, startedMs: requestedAt, recoveredMs });
  const generation = await rebuild(traffic, adminToken, rebuiltMidway);
  if (generation === undefined) {
    chaos.problems.push(`the rebuild of ${rebuiltMidway} was refused`);
    rebuildStep(now());
  }
  chaos.lines.push(`chaos: rebuild of ${rebuiltMidway} requested at ${seconds(requestedAt)} as generation ${generation ?? '?'}`);
  // Watched from the request on: the swap may come before the second kill, or outlive it (the
  // new process resumes the rebuild), for up to 120 s after it.
  const watching = new AbortController();
  const swapped = generation === undefined ? undefined : swappedIn(db, generation, since, watching.signal);
  if (!(await reached(at.secondKill))) {
    watching.abort();
    if (swapped) rebuildStep(now());
    return chaos;
  }
  await kill(2);
  if (swapped) {
    const timer = setTimeout(() => watching.abort(), 120_000);
    const swappedAt = await swapped;
    clearTimeout(timer);
    rebuildStep(swappedAt ?? now());
    if (swappedAt === undefined) chaos.problems.push(`${rebuiltMidway} generation ${generation} not swapped in within 120 s of the second kill`);
    else chaos.lines.push(`chaos: ${rebuiltMidway} generation ${generation} swapped in by ${seconds(swappedAt)}`);
  }
  return chaos;
}

/** When (ms since the load began) generation `generation` of the rebuilt read model went live; `undefined` if aborted first. */
async function swappedIn(db: Kysely<unknown>, generation: number, since: number, signal: AbortSignal): Promise<number | undefined> {
  while (!signal.aborted) {
    const rows = await listCheckpoints(db);
    if (rows.some((row) => row.name === rebuiltMidway && row.active && row.generation >= generation)) return performance.now() - since;
    await sleep(250, signal);
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
      while (performance.now() < untilMs && services.unexpectedExits.length === 0) {
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
async function soak(run: Run, ctx: LoadContext, options: z.infer<typeof optionsSchema>): Promise<Outcome> {
  const loadMs = options.minutes * 60_000;
  const since = performance.now();
  const memory = new MemorySampler(run.services, since);
  memory.start();
  const chaos = runChaos(run.services, run.db, run.traffic, run.adminToken, timeline(loadMs), since);
  await drive(ctx, run.services, options.concurrency, since + loadMs);
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
  print(`load: ${fmt(traffic.requests)} requests in ${seconds(loadEndedMs)} (${rate} req/s), ${fmt(ledger.accepted.length)} commands accepted, ${fmt(ledger.webhookDeliveries)} webhook deliveries`);
  for (const line of traffic.summary()) print(`  ${line}`);
  for (const line of outcome.chaos.lines) print(line);
  printMemory(outcome.memory, outcome.loadEndedMs);
}

/** Every check, printed as it completes; true when all passed. */
async function verify(run: Run, outcome: Outcome, loadMs: number): Promise<boolean> {
  const { db, traffic, services } = run;
  const { ledger, chaos } = outcome;
  const settleStarted = performance.now();
  const unsettled = await settle(db, names, 120_000);
  print(`settled: read models and the payment process at the log head ${formatPosition(await logHead(db))} after ${seconds(performance.now() - settleStarted)}`);
  const rebuildForCheck = async (name: string) => {
    const generation = await rebuild(traffic, run.adminToken, name);
    if (generation === undefined) throw new Error(`the rebuild of ${name} was refused`);
    return generation;
  };
  // A read that timed out waiting for its position is a missed read of one's write too, unless
  // a projector kill or the rebuild was under way then (or had just ended).
  const waits = judgeNotCaughtUp(traffic.notCaughtUp, chaos.steps, outcome.since);
  // A few may come from a loaded machine's passing lag (CI's two cores run everything at once);
  // a projector stalled without failing answers every such read so, hundreds a minute.
  const positionReads = ledger.readYourWrites + ledger.missedWrites.length + traffic.notCaughtUp.length;
  const tolerated = Math.max(3, Math.floor(positionReads * 0.01));
  const stalled =
    waits.unexcused.length > tolerated
      ? waits.unexcused.map((answer) => `503 not-caught-up at ${seconds(answer.at - outcome.since)}, no chaos step under way: ${answer.what}`)
      : [];
  const checks = [
    () => checkOf('no 5xx other than deliberate 503 shedding', `${traffic.failureCount} unexpected; 503 with Retry-After: ${traffic.shedSummary(outcome.since)}`, traffic.failures),
    () => checkOf('every other answer keeps the HTTP contract', 'idempotent replays, command results, payment intents', ledger.violations),
    () =>
      checkOf(
        'reads with Consistency-Position see their writes',
        `${fmt(ledger.readYourWrites)} found, ${ledger.missedWrites.length} missed; 503 not-caught-up (any read waiting on a position): ` +
          `${waits.excused.length} excused (during a projector kill or the rebuild, or ${seconds(notCaughtUpGraceMs)} after), ${waits.unexcused.length} unexcused (at most ${tolerated} tolerated)`,
        [...ledger.missedWrites, ...stalled],
      ),
    () => checkOf('projector killed twice, rebuild swapped in, all settled', `${chaos.lines.length} of 4 chaos steps done`, [...chaos.problems, ...unsettled]),
    () => checkEventsExactlyOnce(db, ledger),
    () => checkNoDoubleBooking(db),
    () => checkReadModelsEqualRebuild(db, names, rebuildForCheck, print),
    () => rssCheck(outcome.memory, loadMs),
    async () => checkOf('every process stops cleanly on SIGTERM', 'exit code 0', await services.stopAll()),
  ];
  let passed = true;
  for (const next of checks) {
    const check = await next();
    report(check);
    passed &&= check.ok;
  }
  return passed;
}

async function main(): Promise<boolean> {
  const options = parseOptions();
  const workDir = await mkdtemp(path.join(tmpdir(), 'soak-'));
  const database = await benchDatabase('soak');
  const stripe = await new FakeStripeServer().start();
  const pool = createPool(database.url, 4);
  const db = createKysely<unknown>(pool);
  let services: SoakServices | undefined;
  let passed = false;
  try {
    // Holds outlast the run, so nothing expires by itself while the checks look.
    const holdMinutes = Math.ceil(options.minutes) + 60;
    services = await SoakServices.start({
      databaseUrl: database.url,
      workDir,
      env: {
        STRIPE_SECRET_KEY: 'sk_test_fake',
        STRIPE_WEBHOOK_SECRET: webhookSecret,
        STRIPE_API_BASE: stripe.apiBase.origin,
        BOOKING_HOLD_MINUTES: String(holdMinutes),
      },
    });
    print(`soak: ${options.minutes} min, ${options.concurrency} users, command + query + projector processes, logs in ${workDir}`);
    const traffic = new Traffic({ command: services.url('command'), query: services.url('query') });
    const world = await seedWorld(traffic, { listings: 40, doctors: 20 });
    if ((await caughtUp(db, 60_000)) === undefined) throw new Error('the read models never caught up with the seed');
    const run: Run = { services, db, traffic, adminToken: token(world.adminId, ['ADMIN']) };
    const outcome = await soak(run, { traffic, ledger: new Ledger(), world, stripe, webhookSecret }, options);
    printLoad(traffic, outcome);
    const crashed = checkOf('every service process stayed up', 'nothing but the two projector kills', services.unexpectedExits);
    if (!crashed.ok) report(crashed);
    passed = crashed.ok && (await verify(run, outcome, options.minutes * 60_000));
  } finally {
    await services?.stopAll();
    await db.destroy();
    await stripe.stop();
    await database.stop();
    // The processes' logs are what a failure is explained by; a clean run leaves nothing behind.
    if (passed) await rm(workDir, { recursive: true, force: true });
  }
  return passed;
}

main().then(
  (passed) => {
    print(passed ? 'PASS' : 'FAIL');
    process.exitCode = passed ? 0 : 1;
  },
  (error: unknown) => {
    print(`FAIL: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  },
);
