/** The time, for everything outside the domain that needs it; tests pass a fake one. */
export interface Clock {
  /** The current instant. */
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };
