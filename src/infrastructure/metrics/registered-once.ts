import type { Metric, Registry } from 'prom-client';

/**
 * The metric `name` in `registry`, made by `make` the first time: both APIs of one process (and a
 * test's second server) publish into one registry, and prom-client refuses a name registered twice.
 */
export function registeredOnce<M extends Metric>(registry: Registry, name: string, kind: abstract new (...args: never[]) => M, make: () => M): M {
  const existing = registry.getSingleMetric(name);
  return existing instanceof kind ? existing : make();
}
