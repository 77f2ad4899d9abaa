import type { Projection } from '../../projections/runtime/projection.js';

/**
 * Every read model the projector role runs. Each read model's folder under `src/projections`
 * exports its projection; add it here to have it built and kept up to date.
 */
export const readModels: readonly Projection[] = [];
