import { fold } from '../../domain/shared/decider.js';
import { deterministicUuid } from '../ids.js';
import { eventMetadataSchema, type CommandContext, type EventMetadata } from '../metadata.js';
import type { Clock } from '../ports/clock.js';
import {
  ConcurrencyError,
  type EventStore,
  type JsonObject,
  type NewEvent,
  type Position,
  type RecordedEvent,
} from '../ports/event-store.js';
import { START } from '../ports/position.js';
import type { Aggregate } from './aggregate.js';
import { TooMuchContentionError, VersionMismatchError } from './errors.js';
import type { DomainEvent } from './event-codec.js';
import { StateCache, type CachedStream, type RecentEvent } from './state-cache.js';

export type CommandOptions = {
  /** Identifies the command; event ids derive from it, so a retried command appends nothing twice. */
  readonly commandId: string;
  readonly context: CommandContext;
  /** The version the caller saw (`If-Match`): a conflict is then returned, not retried. */
  readonly expectedVersion?: number;
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
};

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

  async function load(streamId: string): Promise<CachedStream<State>> {
    const cached = cache.get(streamId);
    const from = cached ? cached.revision + 1 : 0;
    const read = await deps.eventStore.readStream(streamId, { from });
    if (read.status === 'no_stream') return cached ?? { state: aggregate.decider.initialState, revision: -1, position: START, recent: [] };
    const tail: RecordedEvent[] = [];
    for await (const event of read.events) tail.push(event);
    const last = tail.at(-1);
    if (!last) return cached ?? { state: aggregate.decider.initialState, revision: -1, position: START, recent: [] };
    const state = fold(
      { initialState: cached?.state ?? aggregate.decider.initialState, evolve: aggregate.decider.evolve },
      tail.map((event) => aggregate.codec.decode(event)),
    );
    const recent = [...(cached?.recent ?? []), ...tail.map(({ id, revision, position }) => ({ id, revision, position }))];
    const loaded = { state, revision: last.revision, position: last.position, recent: recent.slice(-recentWindow) };
    cache.set(streamId, loaded);
    return loaded;
  }

  function toNewEvents(streamId: string, events: readonly Event[], options: CommandOptions): NewEvent[] {
    const { context } = options;
    const occurredAt = deps.clock.now().toISOString();
    return events.map((event, index) => {
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
      });
      return { id: eventId(options.commandId, streamId, index), type: event.type, data: toJson(event.data), metadata };
    });
  }

  async function handle(
    streamId: string,
    input: CommandInput<Command, State>,
    options: CommandOptions,
  ): Promise<CommandResult<State, Event>> {
    for (let attempt = 1; ; attempt++) {
      const current = await load(streamId);
      const original = findApplied(current.recent, options.commandId, streamId);
      if (original) return { streamId, ...original, events: [], state: current.state, alreadyApplied: true };
      if (options.expectedVersion !== undefined && options.expectedVersion !== current.revision) {
        throw new VersionMismatchError(streamId, options.expectedVersion, current.revision < 0 ? 'no_stream' : current.revision);
      }
      const command = isBuilder(input) ? input(current.state) : input;
      const events = aggregate.decider.decide(command, current.state);
      if (events.length === 0) {
        return { streamId, version: current.revision, position: current.position, events, state: current.state, alreadyApplied: false };
      }
      try {
        const appended = await deps.eventStore.appendToStream(streamId, toNewEvents(streamId, events, options), {
          expectedRevision: current.revision < 0 ? 'no_stream' : current.revision,
        });
        const state = events.reduce(aggregate.decider.evolve, current.state);
        return { streamId, version: appended.revision, position: appended.position, events, state, alreadyApplied: false };
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
        if (options.expectedVersion !== undefined) {
          throw new VersionMismatchError(streamId, options.expectedVersion, error.actual);
        }
        if (attempt >= maxAttempts) throw new TooMuchContentionError(streamId, attempt);
        await backoff(attempt);
      }
    }
  }

  /** The current state and version, for outside facts another aggregate's command needs. */
  async function read(streamId: string): Promise<{ state: State; version: number; position: Position }> {
    const { state, revision, position } = await load(streamId);
    return { state, version: revision, position };
  }

  return { handle, read };
}

export type CommandHandler<Command, Event extends DomainEvent, State> = ReturnType<
  typeof commandHandler<Command, Event, State>
>;

export function eventId(commandId: string, streamId: string, index: number): string {
  return deterministicUuid(commandId, streamId, String(index));
}

/** The revision and position of the last event a command appended, if it is among the recent ones. */
function findApplied(
  recent: readonly RecentEvent[],
  commandId: string,
  streamId: string,
): { version: number; position: Position } | undefined {
  const start = recent.findIndex((event) => event.id === eventId(commandId, streamId, 0));
  if (start < 0) return undefined;
  let last = recent[start];
  for (let i = start + 1, index = 1; i < recent.length && recent[i]?.id === eventId(commandId, streamId, index); i++, index++) {
    last = recent[i];
  }
  return last && { version: last.revision, position: last.position };
}

/** Jittered exponential backoff: contenders spread out instead of colliding again in lockstep. */
function backoff(attempt: number): Promise<void> {
  const ceiling = Math.min(2 ** attempt, 100);
  return new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
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
