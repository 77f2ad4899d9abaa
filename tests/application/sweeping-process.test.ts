import { describe, expect, it } from 'vitest';
import { runSweepLoop } from '../../src/application/process-managers/sweeping-process.js';
import { MemoryEventStore } from '../../src/infrastructure/memory-event-store/memory-event-store.js';

describe('sweep loop', () => {
  it('reports a failed round as an error and a failed attempt, and the next round that works as a successful one', async () => {
    // Given a process whose first sweep fails (its provider down) and whose second works
    const stop = new AbortController();
    const reports: string[] = [];
    let rounds = 0;
    const process = {
      observe: () => undefined,
      async sweep() {
        rounds += 1;
        if (rounds === 1) throw new Error('provider down');
        stop.abort();
        return { progressed: 1, failed: 0 };
      },
    };

    // When the loop runs two rounds
    await runSweepLoop(
      process,
      {
        eventStore: new MemoryEventStore(),
        eventTypes: [],
        sweepEveryMs: 1,
        onError: (error) => reports.push(`error: ${error instanceof Error ? error.message : String(error)}`),
        onAttempt: (succeeded) => reports.push(succeeded ? 'round succeeded' : 'round failed'),
      },
      stop.signal,
    );

    // Then it told of both, in order
    expect(reports).toEqual(['error: provider down', 'round failed', 'round succeeded']);
  });

  it('reports a round where nothing progressed and something failed as a failed attempt; one with nothing due, or one where something progressed, as a successful one', async () => {
    // Given a process whose rounds fail at everything due, find nothing due, and progress at one of two
    const stop = new AbortController();
    const attempts: boolean[] = [];
    const rounds = [
      { progressed: 0, failed: 2 },
      { progressed: 0, failed: 0 },
      { progressed: 1, failed: 1 },
    ];
    const process = {
      observe: () => undefined,
      async sweep() {
        const round = rounds.shift() ?? { progressed: 0, failed: 0 };
        if (rounds.length === 0) stop.abort();
        return round;
      },
    };

    // When the loop runs the three rounds
    await runSweepLoop(process, { eventStore: new MemoryEventStore(), eventTypes: [], sweepEveryMs: 1, onAttempt: (succeeded) => attempts.push(succeeded) }, stop.signal);

    // Then only the first was a failed attempt
    expect(attempts).toEqual([false, true, true]);
  });
});
