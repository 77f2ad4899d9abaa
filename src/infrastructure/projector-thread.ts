import { isMainThread, parentPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import type { ProjectionStatus } from '../projections/runtime/projector-metrics.js';
import { readModelProjections } from '../projections/read-models.js';
import { loadConfig, type Config } from './config/config.js';
import { createLogger, type Logger } from './logging/logger.js';
import { startProjectors } from './projections/projector-runner.js';
import { SharedTailEventStore } from './shared-subscription/shared-tail-event-store.js';
import { openStorage, type Storage } from './storage.js';

/**
 * Every read model's projector, following the log through one shared reader instead of one query
 * (and one decode of every event) per read model.
 */
export function startReadModelProjectors(config: Config, storage: Storage, logger: Logger): { status(): ProjectionStatus[]; stop(): Promise<void> } {
  const sharedTail = new SharedTailEventStore(storage.revealed, {
    onError: (err) => logger.warn({ err }, 'shared event reader failed; restarting'),
  });
  const runtime = startProjectors({ config, connectionString: storage.url, pool: storage.pool, eventStore: sharedTail, logger, projections: readModelProjections });
  return {
    status: () => runtime.status(),
    async stop() {
      // Batches in flight commit, then the reader stops; the store stays open for its owner.
      await runtime.stop();
      sharedTail.detach();
    },
  };
}

/** What the projector thread posts to the main thread. */
type ProjectorThreadMessage = { readonly status: ProjectionStatus[] };
/** What the main thread posts to the projector thread: an erasure its watcher heard of, or stop. */
type MainThreadMessage = 'stop' | { readonly erased: string };
const projectorThreadMarker = 'bookable-projector-thread';

/**
 * The `all` role's read-model projectors, on a thread of their own: sharing one event loop with
 * both APIs, a projector's batch waited behind requests, and its open transaction held back the
 * event horizon for every reader meanwhile. The thread opens its own pool on the same database
 * and posts its projections' status every second for `/metrics`.
 */
export async function startProjectorThread(
  storage: Storage,
  logger: Logger,
  onFailure: (err: unknown) => void,
): Promise<{ status(): ProjectionStatus[]; markErased(subjectId: string): void; stop(): Promise<void> }> {
  let latest: ProjectionStatus[] = [];
  const worker = new Worker(threadEntry(), {
    eval: true,
    workerData: projectorThreadMarker,
    // The database the main thread opened (an embedded one included), already migrated.
    env: { ...process.env, DATABASE_URL: storage.url, RUN_MIGRATIONS: 'false' },
    // Its batches allocate in bursts and keep little: a young generation a quarter of the main
    // thread's default (4 MB semi-spaces, not 16) bounds what it can hold at 12 MB instead of 48,
    // at no cost to its lag that the benches could see. (A --max-semi-space-size flag would
    // override this, which is why `npm start` sets none.)
    resourceLimits: { maxYoungGenerationSizeMb: 12 },
  });
  let stopping = false;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  // Started once its projectors run (its first status), so that readiness means projecting.
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
    void exited.then(() => reject(new Error('the projector thread exited while starting')));
  });
  worker.on('message', (message: ProjectorThreadMessage) => (latest = message.status));
  worker.on('error', (err) => {
    if (!stopping) onFailure(err);
  });
  void exited.then(() => {
    if (!stopping) onFailure(new Error('the projector thread exited'));
  });
  logger.debug('projector thread started');
  return {
    status: () => latest,
    // The thread's vault keeps keys of its own in memory: told of each erasure the main thread's
    // watcher hears of, or it revealed a destroyed key (one whose `SubjectErased` was not in the
    // log yet) for up to a minute. One watcher per process, not one per thread polling again.
    markErased: (subjectId) => worker.postMessage({ erased: subjectId } satisfies MainThreadMessage),
    async stop() {
      stopping = true;
      worker.postMessage('stop' satisfies MainThreadMessage);
      await exited;
    },
  };
}

/**
 * Code that loads this module in a thread: this module, not main's, so that the thread loads
 * only what projecting needs (neither API, nor the payment gateway), half the memory. Run from
 * TypeScript source (tests, tsx), the thread first registers tsx's loader: a thread does not
 * inherit the hooks of its parent's.
 */
function threadEntry(): string {
  const self = JSON.stringify(import.meta.url);
  if (!import.meta.url.endsWith('.ts')) return `import(${self});`;
  return `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${self}); });`;
}

/** The projector thread's life: projectors until the main thread says stop, then a clean exit. */
async function runProjectorThread(port: MessagePort): Promise<void> {
  const config = loadConfig(process.env, { listens: false });
  const logger = createLogger({ level: config.LOG_LEVEL }).child({ thread: 'projector' });
  const storage = await openStorage(config, logger, 'bookable projector-thread', { claimEventLog: 'claim' });
  const projectors = startReadModelProjectors(config, storage, logger);
  const post = () => port.postMessage({ status: projectors.status() } satisfies ProjectorThreadMessage);
  post();
  const publish = setInterval(post, 1000);
  port.on('message', (message: MainThreadMessage) => {
    if (message !== 'stop') {
      storage.vault.markErased(message.erased);
      return;
    }
    clearInterval(publish);
    void projectors
      .stop()
      .then(() => storage.stop())
      .finally(() => port.close());
  });
}

if (!isMainThread && workerData === projectorThreadMarker && parentPort) void runProjectorThread(parentPort);
