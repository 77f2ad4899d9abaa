import { expect } from 'vitest';
import { fold, type Decider } from '../../src/domain/shared/decider.js';
import { DomainError } from '../../src/domain/shared/domain-error.js';

/**
 * Given events, when a command, then events or a rule violation:
 *
 *   spec.given([listingCreated]).when(deactivate).then([listingDeactivated]);
 *   spec.given([]).when(deactivate).thenFails('not-found');
 */
export function deciderSpec<Command, Event, State>(decider: Decider<Command, Event, State>) {
  return {
    given(events: Event[]) {
      return {
        when(command: Command) {
          const decide = () => decider.decide(command, fold(decider, events));
          return {
            then(expected: Event[]) {
              expect(decide()).toEqual(expected);
            },
            thenFails(code: string) {
              let caught: unknown;
              try {
                decide();
              } catch (error) {
                caught = error;
              }
              expect(caught, `expected rule "${code}" to refuse the command`).toBeInstanceOf(DomainError);
              expect((caught as DomainError).code).toBe(code);
            },
          };
        },
      };
    },
  };
}
