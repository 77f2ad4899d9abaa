import { Counter, type Registry } from 'prom-client';
import { registeredOnce } from './registered-once.js';

/**
 * Answers replayed from a stored response under an `Idempotency-Key`, by route pattern: the only
 * other sign of one is the `Idempotent-Replayed` header. Many of them from one route are clients
 * retrying after lost answers (timeouts, a proxy cutting connections).
 */
export function idempotencyMetrics(registry: Registry): (route: string) => void {
  const name = 'idempotent_replays_total';
  const replays = registeredOnce(registry, name, Counter, () => new Counter({ name, help: 'Responses replayed from a stored answer under an Idempotency-Key, by route', labelNames: ['route'], registers: [registry] }));
  return (route) => replays.inc({ route });
}
