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
  /**
   * The state keeps none of the personal fields its events carry (a user's roles, not their
   * name), so the stream is folded as stored, its personal fields sealed, and reading it needs no
   * key: a person whose key was lost can still be read, and so erased, which settles it. Only for
   * an aggregate whose event schemas take any text in those fields.
   */
  readonly foldsSealed?: boolean;
};
