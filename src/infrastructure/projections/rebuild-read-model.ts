import type { Kysely } from 'kysely';
import type { EventStore } from '../../application/ports/event-store.js';
import { comparePositions, type Position } from '../../application/ports/position.js';
import { sleep } from '../../application/sleep.js';
import { readGenerations, requestRebuild, rowPosition, toCheckpointView } from '../../projections/runtime/projection-checkpoints.queries.js';
import type { CheckpointRow } from '../../projections/runtime/projection-checkpoints.table.js';
import type { Projection } from '../../projections/runtime/projection.js';
import { CommandFailed } from '../config/command-line.js';
import { cliRebuildRequest } from './cli-rebuild-request.js';

export type RebuildOptions = {
  readonly db: Kysely<unknown>;
  /** Where the log ends: a read model built for the first time is live once it has got there. */
  readonly eventStore: Pick<EventStore, 'headPosition' | 'committedVisible'>;
  readonly projection: Pick<Projection, 'name' | 'version'>;
  /** Starts this process's projectors of the read model (a running projector may build it first); stopped at the end, failed or not. */
  startProjectors(): { stop(): Promise<void> };
  print(line: string): void;
  /** How often the checkpoints are read while the copy is built. */
  readonly pollMs?: number;
};

/** Longest wait for events committed before the command to show in the log (see `logHead`). */
const visibleWaitMs = 5_000;

/** A generation being built, as this command found it: what it had done then, and when that was. */
type Build = { readonly generation: number; readonly eventsAtStart: bigint; readonly startedAt: number };

/**
 * `npm run projections:rebuild -- <name>`: a fresh copy of a read model, built by this process's
 * projectors or a running one's, reported with its rate once it is live.
 *
 * A read model with no live copy yet (never built, or its checkpoints reset) gets its first copy
 * from the projectors anyway, from the first event: that build is the one reported, once it has
 * every event the log held when the command started. Asking for a rebuild beside it would build
 * it twice.
 */
export async function rebuildReadModel(options: RebuildOptions): Promise<void> {
  const { db, projection, print } = options;
  // Looked at before the projectors start: they create the first generation when there is none.
  const startedAt = performance.now();
  const neverBuilt = !(await readGenerations(db, projection.name)).some((row) => row.active);
  const head = neverBuilt ? await logHead(options.eventStore) : undefined;
  const runtime = options.startProjectors();
  try {
    if (head !== undefined) {
      // Nothing of it existed before this command: every event it processes counts.
      const active = await waitFor(options, (rows) => rows.find((row) => row.active));
      print(`${projection.name} has no copy yet: building it as generation ${active.generation}`);
      const build = { generation: active.generation, eventsAtStart: 0n, startedAt };
      const live = await waitUntilLive(options, build, (row) => row.schema_ready && comparePositions(rowPosition(row), head) >= 0);
      print(`${projection.name} built: ${rebuildRate(live.eventsProcessed, live.seconds)}, now live`);
      return;
    }
    // This code's version: a rebuild pending for another one is one this process cannot build.
    const { generation } = await requestRebuild(db, projection.name, projection.version, cliRebuildRequest());
    // A rebuild under way (a running projector's) may be far along already: only what it does from now on is this request's.
    const requestedAt = performance.now();
    const requested = (await readGenerations(db, projection.name)).find((row) => row.generation === generation);
    print(`rebuilding ${projection.name} as generation ${generation}`);
    const build = { generation, eventsAtStart: BigInt(requested?.events_processed ?? 0), startedAt: requestedAt };
    const live = await waitUntilLive(options, build, (row) => row.active);
    print(`${projection.name} rebuilt: ${rebuildRate(live.eventsProcessed, live.seconds)}, now live`);
  } finally {
    // On a failure too: a failed generation's projector keeps its lock, and the process alive, until stopped.
    await runtime.stop();
  }
}

/**
 * The last event committed before now, once the log shows it. A transaction held open elsewhere
 * longer than the wait only makes this head an earlier one: the copy is then reported live a
 * little early, never late.
 */
async function logHead(eventStore: RebuildOptions['eventStore']): Promise<Position> {
  await eventStore.committedVisible?.(visibleWaitMs);
  return eventStore.headPosition();
}

/** `count` events in `seconds`, and the rate. */
export function rebuildRate(count: bigint, seconds: number): string {
  const rate = seconds > 0 ? Math.round(Number(count) / seconds) : 0;
  return `${count} events in ${seconds.toFixed(1)} s (${rate} events/s)`;
}

/** Polls the read model's generations until `found` answers something. */
async function waitFor<T>(options: RebuildOptions, found: (rows: CheckpointRow[]) => T | undefined): Promise<T> {
  for (;;) {
    const answer = found(await readGenerations(options.db, options.projection.name));
    if (answer !== undefined) return answer;
    await sleep(options.pollMs ?? 250);
  }
}

/** Waits until the build's generation is `live`; a CommandFailed if it fails or is retired first. */
async function waitUntilLive(options: RebuildOptions, build: Build, live: (row: CheckpointRow) => boolean): Promise<{ eventsProcessed: bigint; seconds: number }> {
  const { name } = options.projection;
  const what = `rebuild of ${name} as generation ${build.generation}`;
  const row = await waitFor(options, (rows) => {
    const copy = rows.find((candidate) => candidate.generation === build.generation);
    if (copy?.status === 'failed') {
      const failure = toCheckpointView(copy).lastFailure;
      const at = failure?.eventPosition ? ` at event ${failure.eventPosition} (${failure.eventType ?? 'of unknown type'})` : '';
      throw new CommandFailed(`${what} failed${at}: ${failure?.error ?? 'unknown error'}`);
    }
    // Retired (a newer version went live, or a later request replaced it), maybe dropped already.
    if (!copy || copy.status === 'retired') throw new CommandFailed(`${what} was retired before it went live`);
    return live(copy) ? copy : undefined;
  });
  return { eventsProcessed: BigInt(row.events_processed) - build.eventsAtStart, seconds: (performance.now() - build.startedAt) / 1000 };
}
