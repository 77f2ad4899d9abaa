import type { Actor } from '../../domain/shared/actor.js';
import type { CommandOptions } from '../command-handling/handle-command.js';
import type { EventStore, Position, RecordedEvent } from '../ports/event-store.js';
import { sleep } from '../sleep.js';

/**
 * What a command sent later needs of the event that caused it. Not the event itself: a sweeping
 * process keeps every pending entry until it is settled, and a whole event (data, metadata, chain
 * hashes) is about ten times its size.
 */
export type Cause = { readonly id: string; readonly correlationId: string };

export function causeOf(event: RecordedEvent): Cause {
  const correlationId = event.metadata.correlationId;
  return { id: event.id, correlationId: typeof correlationId === 'string' ? correlationId : event.id };
}

/**
 * The options of step `step` that process `processName` takes for `cause`, acting as
 * `system:<processName>` with `roles`: the same step for the same cause always has the same
 * command id, so another instance's, or a restarted one's, appends nothing twice.
 */
export function commandCausedBy(processName: string, cause: Cause, step: string, roles: Actor['roles'] = []): CommandOptions {
  return {
    commandId: `${processName}:${step}:${cause.id}`,
    context: {
      actor: { id: `system:${processName}`, roles },
      requestId: `${processName}-${cause.id}`,
      correlationId: cause.correlationId,
      causationId: cause.id,
    },
  };
}

/**
 * The hold-expiry process's name: its actor is `system:hold-expiry`, also where a request does its
 * work (expiring a lapsed booking in its way). Here, not beside the process, which imports the
 * booking use cases that use it.
 */
export const holdExpiryName = 'hold-expiry';

/**
 * How a sweep went. `progressed`: the due entries whose step went through, was refused by a rule
 * (the world had moved on: nothing is left to do) or, for a look at the provider, was answered,
 * whatever it said (an outcome, still pending, not made yet, or a refusal). `failed`: the steps
 * that failed otherwise this sweep (the provider unreachable or erring), each reported and tried
 * again later; plus 1 when the sweep looked at nothing while the last looks got no answer (a
 * failed look puts its refund off, and the sweeps in between must not read as the outage over).
 */
export type SweepSummary = { readonly progressed: number; readonly failed: number };

/** A process manager that keeps what is pending from the log (`observe`) and settles what is due (`sweep`). */
export type SweepingProcess = {
  observe(event: RecordedEvent): void;
  /**
   * Settles what is due; stops early, leaving the rest for the next sweep, once `signal` aborts.
   * A step failing is reported and counted, not thrown: one stuck entry must not hold up the others.
   */
  sweep(signal?: AbortSignal): Promise<SweepSummary>;
};

export type SweepLoopOptions = {
  readonly eventStore: EventStore;
  /** The event types the process observes; everything else is filtered out by the store. */
  readonly eventTypes: readonly string[];
  readonly sweepEveryMs: number;
  /** Told when reading the log (or a sweep) failed; the next round tries again from where it got to. */
  readonly onError?: (error: unknown) => void;
  /**
   * Told after each round whether it succeeded: an operator's stall signal is how long rounds have
   * failed in a row, that is how long the process has been unable to do its work (for the refund
   * reconciliation, to get answers from the provider), not whether some entry is stuck. A round
   * fails when reading the log or the sweep throws, or when its sweep failed at something and
   * nothing progressed (`SweepSummary`). Any other round succeeded: an entry refused for ever (a
   * refusal is an answer), or one failing for ever beside others that progress, shows in the error
   * count instead.
   */
  readonly onAttempt?: (succeeded: boolean) => void;
};

/**
 * Until `signal` aborts, every `sweepEveryMs`: hands `process` what the log gained since the last
 * time (from the start, the first time: after a restart it knows again all that is still pending),
 * then has it sweep. Reads as often as it sweeps, not on every append: nothing a sweep settles is
 * due sooner than a sweep could act on it, and a live subscription cost a query per append.
 */
export async function runSweepLoop(process: SweepingProcess, options: SweepLoopOptions, signal: AbortSignal): Promise<void> {
  let after: Position | undefined;
  while (!signal.aborted) {
    try {
      for await (const event of options.eventStore.readAll({ ...(after ? { after } : {}), filter: { eventTypes: options.eventTypes } })) {
        process.observe(event);
        after = event.position;
      }
      const { progressed, failed } = await process.sweep(signal);
      options.onAttempt?.(failed === 0 || progressed > 0);
    } catch (error) {
      options.onError?.(error);
      options.onAttempt?.(false);
    }
    await sleep(options.sweepEveryMs, signal);
  }
}
