import type {
  AppendResult,
  EventStore,
  ExpectedRevision,
  NewEvent,
  ReadAllOptions,
  ReadStreamOptions,
  ReadStreamResult,
  RecordedEvent,
  SubscribeOptions,
} from '../ports/event-store.js';
import { formatPosition } from '../ports/position.js';
import { subjectErasedType } from '../../domain/user/user.events.js';
import { KeyStoreUnavailableError, type PersonalDataVault } from './personal-data-vault.js';

/**
 * An event the read path could not reveal: `personalData` metadata that does not parse, or
 * ciphertext that will not open (altered, or sealed under another master key); not a key store
 * that did not answer, which passes (`KeyStoreUnavailableError`). It carries the event, because
 * a reader that must not skip it (a projector) can only report and stop at that event if it
 * knows which one it was.
 */
export class UnrevealableEventError extends Error {
  override readonly name = 'UnrevealableEventError';

  constructor(
    readonly event: RecordedEvent,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`Event ${event.id} (${event.type}) at ${formatPosition(event.position)} could not be revealed: ${reason}`, { cause });
  }
}

export type RevealingOptions = {
  /**
   * What to read in place of an event that cannot be revealed. Without it the read fails at that
   * event, as a projector needs (it must stop there, not skip it); the audit trail shows the event
   * instead, with what it could not read marked, since the rest of the history is what an auditor
   * then needs most.
   */
  readonly unrevealable?: (error: UnrevealableEventError) => RecordedEvent;
};

/**
 * The event store as every reader but the command loop and the chain verifier sees it:
 * personal fields revealed, or `[erased]`. Appends pass through untouched (the command loop
 * seals before it hashes). A `SubjectErased` event passing by makes this process stop trusting
 * that subject's key from memory at once, so nothing after it in the log is revealed with it.
 */
export class RevealingEventStore implements EventStore {
  constructor(
    private readonly stored: EventStore,
    private readonly vault: PersonalDataVault,
    private readonly options: RevealingOptions = {},
  ) {}

  appendToStream(streamId: string, events: readonly NewEvent[], options?: { readonly expectedRevision?: ExpectedRevision }): Promise<AppendResult> {
    return this.stored.appendToStream(streamId, events, options);
  }

  async readStream(streamId: string, options?: ReadStreamOptions): Promise<ReadStreamResult> {
    const read = await this.stored.readStream(streamId, options);
    return read.status === 'no_stream' ? read : { status: 'found', events: this.revealEach(read.events) };
  }

  readAll(options?: ReadAllOptions): AsyncIterable<RecordedEvent> {
    return this.revealEach(this.stored.readAll(options));
  }

  subscribeToAll(options?: SubscribeOptions): AsyncIterable<RecordedEvent> {
    return this.revealEach(this.stored.subscribeToAll(options));
  }

  close(): Promise<void> {
    return this.stored.close();
  }

  /**
   * Written by hand rather than as an async generator: projectors read the whole log through
   * here, and a generator's resumption per event is a good part of what reading costs.
   */
  private revealEach(events: AsyncIterable<RecordedEvent>): AsyncIterable<RecordedEvent> {
    return {
      [Symbol.asyncIterator]: () => {
        const source = events[Symbol.asyncIterator]();
        return {
          next: async (): Promise<IteratorResult<RecordedEvent>> => {
            const result = await source.next();
            if (result.done) return result;
            try {
              return { done: false, value: await this.reveal(result.value) };
            } catch (error) {
              // A reader whose `next()` threw asks for nothing more, nor ends the iteration: end
              // the source here, or a live subscription under it stays registered for good.
              await source.return?.().catch(() => undefined);
              throw error;
            }
          },
          return: async (): Promise<IteratorResult<RecordedEvent>> => (await source.return?.()) ?? { done: true, value: undefined },
        };
      },
    };
  }

  private reveal(event: RecordedEvent): RecordedEvent | Promise<RecordedEvent> {
    if (event.type === subjectErasedType) this.noteErasure(event);
    let cached: RecordedEvent | undefined;
    try {
      cached = this.vault.revealCached(event);
    } catch (error) {
      return this.unrevealable(new UnrevealableEventError(event, error));
    }
    return (
      cached ??
      this.vault.reveal([event]).then(
        ([revealed]) => revealed ?? event,
        (error: unknown) => {
          if (error instanceof KeyStoreUnavailableError) throw error;
          return this.unrevealable(new UnrevealableEventError(event, error));
        },
      )
    );
  }

  private unrevealable(error: UnrevealableEventError): RecordedEvent {
    if (!this.options.unrevealable) throw error;
    return this.options.unrevealable(error);
  }

  private noteErasure(event: RecordedEvent): void {
    const userId = event.data.userId;
    if (typeof userId === 'string') this.vault.markErased(userId);
  }
}
