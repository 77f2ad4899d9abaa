/**
 * An aggregate as three pure parts. `decide` throws a `DomainError` when a rule forbids the
 * command; everything it needs (now, ids, outside facts) arrives in the command.
 */
export type Decider<Command, Event, State> = {
  readonly initialState: State;
  decide(command: Command, state: State): Event[];
  evolve(state: State, event: Event): State;
};

/** Folds events into state: what the command side does before `decide`, and audit time travel. */
export function fold<Event, State>(
  decider: Pick<Decider<unknown, Event, State>, 'initialState' | 'evolve'>,
  events: Iterable<Event>,
): State {
  let state = decider.initialState;
  for (const event of events) state = decider.evolve(state, event);
  return state;
}

/** Ends every switch over a union: a new member that is not handled fails to compile. */
export function assertNever(value: never): never {
  throw new Error(`Unhandled case: ${JSON.stringify(value)}`);
}
