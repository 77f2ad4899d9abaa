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
import { formatPosition, type Position } from '../ports/position.js';
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

/** Events read ahead at most to reveal together: far below the keys the vault keeps (10,000 unless told), so none of theirs is let go of before its event is revealed. */
const readAheadMax = 500;

const notYet = Symbol('notYet');

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

  subscribeToAll(options: SubscribeOptions = {}): AsyncIterable<RecordedEvent> {
    // Aborted when the reader stops while a `next()` of the subscription, asked for ahead of it,
    // waits for a live event: a generator ends only once its `next()` settles, and until then
    // the subscription goes on polling the store.
    const abandoned = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, abandoned.signal]) : abandoned.signal;
    return this.revealEach(this.stored.subscribeToAll({ ...options, signal }), () => abandoned.abort());
  }

  headPosition(): Promise<Position> {
    return this.stored.headPosition();
  }

  close(): Promise<void> {
    return this.stored.close();
  }

  /**
   * Written by hand rather than as an async generator: projectors read the whole log through
   * here, and a generator's resumption per event is a good part of what reading costs.
   *
   * An event whose key is not in memory is revealed with those of the events the source holds
   * ready behind it (a page of a catch-up, say): their missing keys are fetched in one lookup,
   * not one per event, which on a log of more people than the vault keeps keys for was one
   * lookup per event. Only what is ready is read ahead, so a live subscription is not kept
   * waiting for company. Events are still revealed one at a time as they are handed out, so a
   * `SubjectErased` among them stops its key being used for the events after it, and an event
   * that cannot be revealed fails at its own turn. One `next()` at a time, as `for await` asks.
   */
  private revealEach(events: AsyncIterable<RecordedEvent>, abandon?: () => void): AsyncIterable<RecordedEvent> {
    return {
      [Symbol.asyncIterator]: () => {
        const source = events[Symbol.asyncIterator]();
        // Read from the source ahead of the reader, handed out before anything else.
        let ahead: RecordedEvent[] = [];
        let aheadAt = 0;
        // The source's answer after the events read ahead, asked for but not yet handed on: the
        // next event, its end, or what it threw (thrown only once the events before it are out).
        let pending: Promise<IteratorResult<RecordedEvent>> | undefined;

        const readAhead = async (first: RecordedEvent): Promise<void> => {
          const batch = [first];
          let immediate: NodeJS.Immediate | undefined;
          // An event the source holds ready settles in microtasks, all run before the event
          // loop's next check phase; one that needs a query or a new append does not.
          const notReady = new Promise<typeof notYet>((resolve) => (immediate = setImmediate(resolve, notYet)));
          try {
            while (batch.length < readAheadMax) {
              const next = source.next();
              const result = await Promise.race([next, notReady]).catch((): typeof notYet => notYet);
              if (result === notYet || result.done) {
                pending = next;
                break;
              }
              batch.push(result.value);
            }
          } finally {
            clearImmediate(immediate);
          }
          ahead = batch;
          aheadAt = 1;
          // A lookup that fails (a key that does not unwrap, the store away) fails nothing here:
          // each event then looks its key up alone, and meets the failure at its own turn.
          await this.vault.fetchKeysFor(batch).catch(() => undefined);
        };

        const stop = async (): Promise<void> => {
          ahead = [];
          aheadAt = 0;
          const waiting = pending;
          pending = undefined;
          if (!waiting) {
            await source.return?.();
            return;
          }
          // A `next()` of the source is still out, waiting for a live event maybe: a generator
          // ends once it settles, which the subscription's abort makes it do at once; not awaited.
          waiting.catch(() => undefined);
          abandon?.();
          void source.return?.().catch(() => undefined);
        };

        return {
          next: async (): Promise<IteratorResult<RecordedEvent>> => {
            let event = ahead[aheadAt];
            // Only an event from the source reads ahead: one read ahead whose key is missing
            // still had its lookup fail, or let go of, and looks it up alone.
            const fromSource = !event;
            if (event) {
              aheadAt++;
            } else {
              const next = pending ?? source.next();
              pending = undefined;
              const result = await next;
              if (result.done) return result;
              event = result.value;
            }
            try {
              return { done: false, value: await this.reveal(event, fromSource ? readAhead : undefined) };
            } catch (error) {
              // A reader whose `next()` threw asks for nothing more, nor ends the iteration: end
              // the source here, or a live subscription under it stays registered for good.
              await stop().catch(() => undefined);
              throw error;
            }
          },
          return: async (): Promise<IteratorResult<RecordedEvent>> => {
            await stop();
            return { done: true, value: undefined };
          },
        };
      },
    };
  }

  /** `fetchKeys`, when given, brings the keys of the events behind `event` into memory with its own. */
  private reveal(event: RecordedEvent, fetchKeys?: (event: RecordedEvent) => Promise<void>): RecordedEvent | Promise<RecordedEvent> {
    if (event.type === subjectErasedType) this.noteErasure(event);
    return this.revealCached(event) ?? this.revealFetching(event, fetchKeys);
  }

  private async revealFetching(event: RecordedEvent, fetchKeys: ((event: RecordedEvent) => Promise<void>) | undefined): Promise<RecordedEvent> {
    if (fetchKeys) {
      await fetchKeys(event);
      const cached = this.revealCached(event);
      if (cached) return cached;
    }
    return this.vault.reveal([event]).then(
      ([revealed]) => revealed ?? event,
      (error: unknown) => {
        if (error instanceof KeyStoreUnavailableError) throw error;
        return this.unrevealable(new UnrevealableEventError(event, error));
      },
    );
  }

  /** The event revealed from the keys in memory; `undefined` when its key is not there. */
  private revealCached(event: RecordedEvent): RecordedEvent | undefined {
    try {
      return this.vault.revealCached(event);
    } catch (error) {
      return this.unrevealable(new UnrevealableEventError(event, error));
    }
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
