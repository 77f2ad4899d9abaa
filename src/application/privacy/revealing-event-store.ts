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
import type { PersonalDataVault } from './personal-data-vault.js';

/** Recorded when a person's data key was destroyed (see the user aggregate). */
const subjectErasedType = 'SubjectErased';

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

  private async *revealEach(events: AsyncIterable<RecordedEvent>): AsyncGenerator<RecordedEvent> {
    for await (const event of events) {
      if (event.type === subjectErasedType) this.noteErasure(event);
      const revealed = this.vault.revealCached(event);
      if (revealed) yield revealed;
      else {
        const [fetched] = await this.vault.reveal([event]);
        yield fetched ?? event;
      }
    }
  }

  private noteErasure(event: RecordedEvent): void {
    const userId = event.data.userId;
    if (typeof userId === 'string') this.vault.markErased(userId);
  }
}
