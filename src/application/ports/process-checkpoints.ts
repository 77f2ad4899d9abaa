import type { Position } from './position.js';

/**
 * Where a process manager has got to in the log. It is saved after an event was handled, not
 * in the same transaction as the handling (its effects are appends and provider calls), so a
 * crash replays the few events after the last save; every step a process manager takes is
 * idempotent for exactly that reason.
 */
export interface ProcessCheckpoints {
  /** The position of the last event `processName` handled; `undefined` before the first. */
  load(processName: string): Promise<Position | undefined>;

  /** Records that `processName` has handled everything up to `position`. Never moves it back. */
  save(processName: string, position: Position): Promise<void>;
}
