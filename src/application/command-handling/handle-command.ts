import { performance } from 'node:perf_hooks';
import { chainMetadata, genesisHash, linkHash } from '../audit/hash-chain.js';
import { DomainError } from '../../domain/shared/domain-error.js';
import { deterministicUuid } from '../ids.js';
import { eventMetadataSchema, type CommandContext, type EventMetadata } from '../metadata.js';
import type { Clock } from '../ports/clock.js';
import { sleep } from '../sleep.js';
import {
  ConcurrencyError,
  DuplicateEventError,
  type EventStore,
  type JsonObject,
  type NewEvent,
  type Position,
  type RecordedEvent,
} from '../ports/event-store.js';
import { START } from '../ports/position.js';
import type { Aggregate } from './aggregate.js';
import { assertExpectedVersion, TooMuchContentionError, VersionMismatchError } from './errors.js';
import type { DomainEvent } from './event-codec.js';
import { StateCache, type CachedStream, type RecentEvent } from './state-cache.js';
import { streamQueue } from './stream-queue.js';
import type { PersonalDataVault, SealedFields } from '../privacy/personal-data-vault.js';

export type CommandOptions = {
  /** Identifies the command; event ids derive from it, so a retried command appends nothing twice. */
  readonly commandId: string;
  readonly context: CommandContext;
  /** The version the caller saw (`If-Match`): a conflict is then returned, not retried. */
  readonly expectedVersion?: number;
  /**
   * The command id was made for this command alone (a request without `Idempotency-Key`), so it
   * cannot be a retry, and nothing needs reading to recognise one: the stream is first assumed
   * to be as this process last left it (new, if it never saw it), and the command decided and
   * appended without reading. The append's expected revision checks that guess; any surprise (a
   * concurrent append, a rule refusing, nothing to do) falls back to reading the tail.
   */
  readonly freshCommandId?: boolean;
};

export type CommandResult<State, Event> = {
  readonly streamId: string;
  /** The stream's revision after the command (−1: the stream still has no events). */
  readonly version: number;
  /** Global position of the stream's last event: what a reader must reach to see this result. */
  readonly position: Position;
  readonly events: readonly Event[];
  readonly state: State;
  /** True when this command had already been applied and nothing new was appended. */
  readonly alreadyApplied: boolean;
};

/** A command, or a function of the current state that builds it (for facts only the state holds). */
export type CommandInput<Command, State> = Command | ((state: State) => Command);

export type CommandHandlerDeps = {
  readonly eventStore: EventStore;
  readonly clock: Clock;
  /** How many streams of this aggregate keep their folded state in memory. */
  readonly cacheSize?: number;
  /** Conflicts re-decided before giving up. */
  readonly maxAttempts?: number;
  /** Told about every command's outcome, e.g. to count them in metrics. */
  readonly observe?: CommandObserver;
  /** Seals personal fields before they are stored; required by aggregates whose events have any. */
  readonly personalData?: PersonalDataVault;
  /** Longest a command waits for the one before it on its stream in this process (default 2 s). */
  readonly maxQueueWaitMs?: number;
};

export type CommandOutcomeKind =
  | 'accepted'
  /** The decider had nothing to add: the command was already true. */
  | 'unchanged'
  /** The same command id had been applied before; nothing was appended. */
  | 'already-applied'
  | 'rejected'
  /** A concurrent append won; the command is decided again (reported once per retry). */
  | 'conflict-retried'
  /** The caller pinned a version that is no longer current. */
  | 'conflict-returned'
  | 'failed';

export type CommandObservation = {
  readonly category: string;
  readonly command: string;
  readonly outcome: CommandOutcomeKind;
  /** Whole command, reads and retries included. */
  readonly seconds: number;
  /** The successful append alone, when there was one. */
  readonly appendSeconds?: number;
};

export type CommandObserver = (observation: CommandObservation) => void;

/** How many recent event ids per stream are remembered to recognise a retried command. */
const recentWindow = 64;

/**
 * The one command-handling loop: read the stream (from the cached state on), fold, decide, append
 * with the expected revision; on a concurrent append re-read and re-decide, unless the caller
 * pinned a version. Returns a handler for one kind of aggregate.
 */
export function commandHandler<Command, Event extends DomainEvent, State>(
  aggregate: Aggregate<Command, Event, State>,
  deps: CommandHandlerDeps,
) {
  const cache = new StateCache<State>(deps.cacheSize);
  const maxAttempts = deps.maxAttempts ?? 12;
  const sealer = personalDataSealer(aggregate, deps.personalData);
  const queue = streamQueue({ maxWaitMs: deps.maxQueueWaitMs });

  const empty: CachedStream<State> = { state: aggregate.decider.initialState, revision: -1, position: START, recent: [], hash: genesisHash };

  async function load(streamId: string): Promise<CachedStream<State>> {
    const cached = cache.get(streamId);
    const from = cached ? cached.revision + 1 : 0;
    const read = await deps.eventStore.readStream(streamId, { from });
    if (read.status === 'no_stream') return cached ?? empty;
    const tail: RecordedEvent[] = [];
    for await (const event of read.events) tail.push(event);
    const last = tail.at(-1);
    if (!last) return cached ?? empty;
    let state = cached?.state ?? aggregate.decider.initialState;
    let hash = cached?.hash ?? genesisHash;
    // The chain covers what is stored (sealed); the decider folds what it says (revealed), unless
    // its state has no use for personal fields.
    const revealed = sealer && aggregate.foldsSealed !== true ? await sealer.vault.reveal(tail) : tail;
    for (const [index, event] of tail.entries()) {
      state = aggregate.decider.evolve(state, aggregate.codec.decode(revealed[index] ?? event));
      hash = linkHash(hash, event);
    }
    const recent = [...(cached?.recent ?? []), ...tail.map(({ id, revision, position }) => ({ id, revision, position }))];
    const loaded = { state, revision: last.revision, position: last.position, recent: recent.slice(-recentWindow), hash };
    cache.set(streamId, loaded);
    return loaded;
  }

  /**
   * The events to store, personal fields sealed, each linked into the stream's audit chain after
   * `current`'s last event; and the state they lead to, folded once here for whoever needs it.
   */
  async function toNewEvents(
    streamId: string,
    current: CachedStream<State>,
    events: readonly Event[],
    options: CommandOptions,
  ): Promise<{ newEvents: NewEvent[]; state: State }> {
    const { context } = options;
    const occurredAt = deps.clock.now().toISOString();
    let prevHash = current.hash;
    let state = current.state;
    const newEvents: NewEvent[] = [];
    for (const [index, event] of events.entries()) {
      state = aggregate.decider.evolve(state, event);
      const { data, personalData } = sealer ? await sealer.seal(event, state) : { data: toJson(event.data), personalData: undefined };
      const metadata: EventMetadata = eventMetadataSchema.parse({
        actorId: context.actor.id,
        actorRoles: [...context.actor.roles],
        correlationId: context.correlationId,
        causationId: context.causationId,
        requestId: context.requestId,
        occurredAt,
        schemaVersion: aggregate.codec.schemaVersion(event.type),
        ...(context.ip === undefined ? {} : { ip: context.ip }),
        ...(context.userAgent === undefined ? {} : { userAgent: context.userAgent }),
        ...(personalData === undefined ? {} : { personalData }),
      });
      const id = eventId(options.commandId, streamId, index);
      const linked = chainMetadata(prevHash, { streamId, id, type: event.type, data, metadata, revision: current.revision + 1 + index });
      prevHash = linkHash(prevHash, { streamId, id, type: event.type, data, metadata: linked, revision: current.revision + 1 + index });
      newEvents.push({ id, type: event.type, data, metadata: linked });
    }
    return { newEvents, state };
  }

  /**
   * Commands on one stream run one after the other in this process (each once the one before it
   * settled), so they never race each other's appends: concurrent holds on one calendar would
   * otherwise all decide on the same version, one winning per round trip, the rest retrying until
   * they ran out of attempts. Only other processes still contend, which the retry loop absorbs.
   * One queue per handler is one per process and stream: a process builds one handler per
   * aggregate (main.ts), and a stream belongs to one aggregate.
   *
   * A command waits `maxQueueWaitMs` at most for the one ahead, then runs beside it: the queue only
   * spares self-contention (the expected revision keeps appends correct), and an append hung on a
   * dead connection must not hold up every later command on its stream, process managers and
   * shutdown included.
   *
   * It cannot deadlock: a command waits only for commands on its own stream, and none, while it
   * runs, waits for another command: it awaits the store, the vault and its backoff alone; a
   * builder is synchronous; use cases (`takeStep`, compensations, process managers) call `handle`
   * after the previous call settled, never from inside one. Cost on the hot path: a Map lookup and
   * two promise reactions per command, and a timer for one that waits; commands on different
   * streams do not wait for each other. `seconds` includes the time spent waiting in the queue: it
   * is part of the command's latency.
   */
  function handle(streamId: string, input: CommandInput<Command, State>, options: CommandOptions): Promise<CommandResult<State, Event>> {
    const queued = performance.now();
    return queue.run(streamId, () => handleInTurn(streamId, input, options, queued));
  }

  async function handleInTurn(
    streamId: string,
    input: CommandInput<Command, State>,
    options: CommandOptions,
    started: number,
  ): Promise<CommandResult<State, Event>> {
    let commandType = 'unknown';
    const report = (outcome: CommandOutcomeKind, appendSeconds?: number) =>
      deps.observe?.({
        category: aggregate.category,
        command: commandType,
        outcome,
        seconds: (performance.now() - started) / 1000,
        ...(appendSeconds === undefined ? {} : { appendSeconds }),
      });
    try {
      const unread = options.freshCommandId === true && options.expectedVersion === undefined && !isBuilder(input) ? input : undefined;
      for (let attempt = 1; ; attempt++) {
        if (attempt === 1 && unread !== undefined) {
          commandType = typeName(unread);
          const appended = await tryWithoutReading(streamId, cache.get(streamId) ?? empty, unread, options);
          if (appended) {
            report('accepted', appended.appendSeconds);
            return appended.result;
          }
        }
        const current = await load(streamId);
        const original = alreadyApplied(streamId, current, options.commandId);
        if (original) {
          report('already-applied');
          return original;
        }
        assertExpectedVersion(streamId, options.expectedVersion, current.revision, () =>
          aggregate.decider.decide(isBuilder(input) ? input(current.state) : input, current.state),
        );
        const command = isBuilder(input) ? input(current.state) : input;
        commandType = typeName(command);
        const events = aggregate.decider.decide(command, current.state);
        if (events.length === 0) {
          report('unchanged');
          return { streamId, version: current.revision, position: current.position, events, state: current.state, alreadyApplied: false };
        }
        const appendStarted = performance.now();
        try {
          const { newEvents, state } = await toNewEvents(streamId, current, events, options);
          const appended = await deps.eventStore.appendToStream(streamId, newEvents, {
            expectedRevision: current.revision < 0 ? 'no_stream' : current.revision,
          });
          const appendSeconds = (performance.now() - appendStarted) / 1000;
          if (!appended.written) {
            // The store recognised every event id: this command was applied long ago, further back
            // than the recent ids we remember, or just now by a copy of it that read the stream
            // where this one did (a double click, a redelivered webhook). It answered with the
            // original result; what this try decided was never stored, so nothing of it is kept,
            // and the state answered is the stream's as it is now, the copy's events in it.
            report('already-applied', appendSeconds);
            const { state } = await load(streamId);
            return { streamId, version: appended.revision, position: appended.position, events: [], state, alreadyApplied: true };
          }
          remember(streamId, current, state, newEvents, appended);
          report('accepted', appendSeconds);
          return { streamId, version: appended.revision, position: appended.position, events, state, alreadyApplied: false };
        } catch (error) {
          if (error instanceof DuplicateEventError) {
            // Some of the ids were stored, all derived from this command's id: it was applied,
            // too long ago for us to remember, and what this try decided on today's state (more
            // events than the original's) is not what it did. As for any retry, what the stream
            // holds now is the answer.
            report('already-applied');
            const now = await load(streamId);
            return { streamId, version: now.revision, position: now.position, events: [], state: now.state, alreadyApplied: true };
          }
          if (!(error instanceof ConcurrencyError)) throw error;
          if (options.expectedVersion !== undefined) {
            throw new VersionMismatchError(streamId, options.expectedVersion, error.actual);
          }
          if (attempt >= maxAttempts) throw new TooMuchContentionError(streamId, attempt);
          report('conflict-retried');
          await backoff(attempt);
        }
      }
    } catch (error) {
      report(error instanceof DomainError ? 'rejected' : error instanceof VersionMismatchError ? 'conflict-returned' : 'failed');
      throw error;
    }
  }

  /**
   * The first try of a command that cannot be a retry: decide on `assumed` (the cached state, or
   * the empty one) and append at its revision. `undefined` means "read it after all": a rule
   * refused or there was nothing to do (either may be the guess being stale, so neither is
   * answered from it), or the stream has moved on.
   */
  async function tryWithoutReading(
    streamId: string,
    assumed: CachedStream<State>,
    command: Command,
    options: CommandOptions,
  ): Promise<{ result: CommandResult<State, Event>; appendSeconds: number } | undefined> {
    let events: Event[];
    try {
      events = aggregate.decider.decide(command, assumed.state);
    } catch (error) {
      if (error instanceof DomainError) return undefined;
      throw error;
    }
    if (events.length === 0) return undefined;
    const { newEvents, state } = await toNewEvents(streamId, assumed, events, options);
    const started = performance.now();
    try {
      const appended = await deps.eventStore.appendToStream(streamId, newEvents, {
        expectedRevision: assumed.revision < 0 ? 'no_stream' : assumed.revision,
      });
      // Written by someone else: only a read tells what the stream holds.
      if (!appended.written) return undefined;
      remember(streamId, assumed, state, newEvents, appended);
      const result = { streamId, version: appended.revision, position: appended.position, events, state, alreadyApplied: false };
      return { result, appendSeconds: (performance.now() - started) / 1000 };
    } catch (error) {
      if (error instanceof ConcurrencyError || error instanceof DuplicateEventError) return undefined;
      throw error;
    }
  }

  /**
   * Our own append is the stream's tail: caching the state it leads to (and its last chain hash)
   * spares the next command decoding it again. Only the last event's position is known; it
   * stands for the batch.
   */
  function remember(
    streamId: string,
    before: CachedStream<State>,
    state: State,
    appendedEvents: readonly NewEvent[],
    appended: { revision: number; position: Position },
  ) {
    const ours = appendedEvents.map((event, index) => ({ id: event.id, revision: before.revision + 1 + index, position: appended.position }));
    const hash = appendedEvents.reduce(
      (prevHash, event, index) => linkHash(prevHash, { ...event, streamId, revision: before.revision + 1 + index }),
      before.hash,
    );
    cache.set(streamId, {
      state,
      revision: appended.revision,
      position: appended.position,
      recent: [...before.recent, ...ours].slice(-recentWindow),
      hash,
    });
  }

  /** The current state and version, for outside facts another aggregate's command needs. */
  async function read(streamId: string): Promise<{ state: State; version: number; position: Position }> {
    const { state, revision, position } = await load(streamId);
    return { state, version: revision, position };
  }

  /**
   * The state and version this process last left the stream at, without reading it: `undefined`
   * when it holds none. It may be behind the stream, so it serves a check that something later
   * confirms (an append with its expected revision), or one that reads before it refuses.
   */
  function cached(streamId: string): { state: State; version: number; position: Position } | undefined {
    const entry = cache.get(streamId);
    return entry && { state: entry.state, version: entry.revision, position: entry.position };
  }

  /**
   * What `handle` answers a retry of command `commandId` that went through, if it did (among the
   * stream's recent events): for a use case whose own checks come before `handle` (a pinned
   * version, steps on other streams), which a retry must pass without checking again, since the
   * command itself moved the stream on.
   */
  async function applied(streamId: string, commandId: string): Promise<CommandResult<State, Event> | undefined> {
    return alreadyApplied(streamId, await load(streamId), commandId);
  }

  function alreadyApplied(streamId: string, current: CachedStream<State>, commandId: string): CommandResult<State, Event> | undefined {
    const original = findApplied(current.recent, commandId, streamId);
    return original && { streamId, ...original, events: [], state: current.state, alreadyApplied: true };
  }

  return { handle, read, cached, applied };
}

export type CommandHandler<Command, Event extends DomainEvent, State> = ReturnType<
  typeof commandHandler<Command, Event, State>
>;

/**
 * How an aggregate's events get their personal fields sealed: with the key of the subject the
 * state names right after each event. `undefined` for an aggregate without personal data.
 */
function personalDataSealer<Command, Event extends DomainEvent, State>(aggregate: Aggregate<Command, Event, State>, vault: PersonalDataVault | undefined) {
  if (!aggregate.codec.hasPersonalData) return undefined;
  const dataSubject = aggregate.dataSubject?.bind(aggregate);
  if (!vault || !dataSubject) {
    throw new TypeError(`${aggregate.category} events carry personal data: the aggregate needs dataSubject and the handler a personal-data vault`);
  }
  return {
    vault,
    async seal(event: Event, state: State): Promise<{ data: JsonObject; personalData: SealedFields | undefined }> {
      const data = toJson(event.data);
      const paths = aggregate.codec.personalFields(event.type);
      if (paths.length === 0) return { data, personalData: undefined };
      const subjectId = dataSubject(state);
      if (subjectId === undefined) throw new TypeError(`${aggregate.category}: no data subject for the personal data of ${event.type}`);
      return vault.seal(subjectId, data, paths);
    },
  };
}

export function eventId(commandId: string, streamId: string, index: number): string {
  return deterministicUuid(commandId, streamId, String(index));
}

/** The revision and position of the last event a command appended, if it is among the recent ones. */
function findApplied(
  recent: readonly RecentEvent[],
  commandId: string,
  streamId: string,
): { version: number; position: Position } | undefined {
  // Hashed once, not once per remembered event: a busy stream remembers a full window.
  const firstId = eventId(commandId, streamId, 0);
  const start = recent.findIndex((event) => event.id === firstId);
  if (start < 0) return undefined;
  let last = recent[start];
  for (let i = start + 1, index = 1; i < recent.length && recent[i]?.id === eventId(commandId, streamId, index); i++, index++) {
    last = recent[i];
  }
  return last && { version: last.revision, position: last.position };
}

/** Jittered exponential backoff: contenders spread out instead of colliding again in lockstep. */
export function backoff(attempt: number): Promise<void> {
  const ceiling = Math.min(2 ** attempt, 100);
  return sleep(Math.random() * ceiling);
}

function typeName(command: unknown): string {
  return typeof command === 'object' && command !== null && 'type' in command && typeof command.type === 'string' ? command.type : 'unknown';
}

function isBuilder<Command, State>(input: CommandInput<Command, State>): input is (state: State) => Command {
  return typeof input === 'function';
}

/**
 * Domain event data is JSON by construction (zod schemas of strings, numbers, booleans, arrays and
 * objects); the round trip also drops `undefined` fields, so what is stored is exactly what a
 * later read decodes.
 */
function toJson(data: object): JsonObject {
  const json: JsonObject = JSON.parse(JSON.stringify(data));
  return json;
}
