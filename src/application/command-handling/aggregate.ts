import type { Decider } from '../../domain/shared/decider.js';
import type { DomainEvent, EventCodec } from './event-codec.js';

/** What the generic command loop needs to know about one kind of aggregate. */
export type Aggregate<Command, Event extends DomainEvent, State> = {
  /** Stream category, e.g. `listing`; also names the aggregate in logs and metrics. */
  readonly category: string;
  readonly decider: Decider<Command, Event, State>;
  readonly codec: EventCodec<Event>;
  /**
   * Whose personal data the stream's events carry (the patient of an appointment, the author
   * of a review), read from the state right after each event; their key seals its personal
   * fields. Required when the codec's events have any.
   */
  dataSubject?(state: State): string | undefined;
};
