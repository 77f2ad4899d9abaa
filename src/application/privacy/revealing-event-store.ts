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
import { subjectErasedType } from '../../domain/user/user.events.js';
import type { PersonalDataVault } from './personal-data-vault.js';

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
            return result.done ? result : { done: false, value: await this.reveal(result.value) };
          },
          return: async (): Promise<IteratorResult<RecordedEvent>> => (await source.return?.()) ?? { done: true, value: undefined },
        };
      },
    };
  }

  private reveal(event: RecordedEvent): RecordedEvent | Promise<RecordedEvent> {
    if (event.type === subjectErasedType) this.noteErasure(event);
    return this.vault.revealCached(event) ?? this.vault.reveal([event]).then(([revealed]) => revealed ?? event);
  }

  private noteErasure(event: RecordedEvent): void {
    const userId = event.data.userId;
    if (typeof userId === 'string') this.vault.markErased(userId);
  }
}
