import { percentile } from './bench-database.js';
import { sleep } from '../../src/application/sleep.js';

/**
 * An open-loop load at a steady rate: request i leaves at start + i / rate, whatever the answers
 * before it are doing. autocannon's `overallRate` is not that: each connection sends its share
 * of the second back to back as the second begins, so "half rate" arrives as one burst a second
 * and what it measures is how that burst queues.
 */
export async function pacedLoad(options: {
  rate: number;
  seconds: number;
  /** Requests in flight at most, as a pool of connections would allow; a due request beyond it is counted late and skipped. */
  maxInFlight: number;
  /** Sends one request; resolves to its HTTP status, rejects when there was no answer. */
  send: () => Promise<number>;
}): Promise<{ rps: number; p50: number; p99: number; errors: number; non2xx: number; skipped: number }> {
  const { rate, seconds, maxInFlight, send } = options;
  const latencies: number[] = [];
  const inFlight = new Set<Promise<void>>();
  let errors = 0;
  let non2xx = 0;
  let skipped = 0;
  let issued = 0;
  const started = performance.now();
  const total = Math.round(rate * seconds);
  while (issued < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) * rate) / 1000) + 1);
    for (; issued < due; issued += 1) {
      if (inFlight.size >= maxInFlight) {
        skipped += 1;
        continue;
      }
      const sentAt = performance.now();
      // As `cannon` counts: rate and latencies of 2xx only, a refusal answered at once being no
      // measure of how fast the service does its work.
      const request: Promise<void> = send().then(
        (status) => void (status >= 200 && status < 300 ? latencies.push(performance.now() - sentAt) : (non2xx += 1)),
        () => void (errors += 1),
      );
      inFlight.add(request);
      void request.finally(() => inFlight.delete(request));
    }
    const nextAt = started + (issued * 1000) / rate;
    await sleep(Math.max(0, nextAt - performance.now()));
  }
  await Promise.all(inFlight);
  const elapsed = (performance.now() - started) / 1000;
  return { rps: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), errors, non2xx, skipped };
}
