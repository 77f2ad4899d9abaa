import { fold } from '../../domain/shared/decider.js';
import { streamIdOf, userDecider, type UserState } from '../../domain/user/user.decider.js';
import { userEventSchema, type UserEvent } from '../../domain/user/user.events.js';
import { deterministicUuid } from '../ids.js';
import type { CommandContext, EventMetadata } from '../metadata.js';
import type { AppendResult, EventStore, ExpectedRevision, JsonObject, NewEvent } from '../ports/event-store.js';

// Interim: the user stream read and written by hand until the generic command-handling loop
// (src/application/command-handling/handle-command.ts) lands; then these two functions go and
// the identity service calls the loop instead. The event ids and metadata already follow it.

export type LoadedUser = { readonly state: UserState; readonly revision: number | 'no_stream' };

export async function loadUser(eventStore: EventStore, userId: string): Promise<LoadedUser> {
  const read = await eventStore.readStream(streamIdOf(userId));
  if (read.status === 'no_stream') return { state: userDecider.initialState, revision: 'no_stream' };
  const events: UserEvent[] = [];
  let revision = -1;
  for await (const recorded of read.events) {
    events.push(userEventSchema.parse({ type: recorded.type, data: recorded.data }));
    revision = recorded.revision;
  }
  return { state: fold(userDecider, events), revision };
}

function metadataFor(context: CommandContext, occurredAt: Date): JsonObject {
  const metadata: EventMetadata = {
    actorId: context.actor.id,
    actorRoles: [...context.actor.roles],
    correlationId: context.correlationId,
    causationId: context.causationId,
    requestId: context.requestId,
    occurredAt: occurredAt.toISOString(),
    schemaVersion: 1,
  };
  if (context.ip !== undefined) metadata.ip = context.ip;
  if (context.userAgent !== undefined) metadata.userAgent = context.userAgent;
  return { ...metadata };
}

/**
 * Appends `events` to the user's stream. Event ids derive from the command id, so running the
 * same command again (a retry after a crash) appends nothing new and returns the first result.
 */
export async function appendUserEvents(
  eventStore: EventStore,
  append: {
    readonly userId: string;
    readonly events: readonly UserEvent[];
    readonly expectedRevision: ExpectedRevision;
    readonly commandId: string;
    readonly context: CommandContext;
    readonly occurredAt: Date;
  },
): Promise<AppendResult> {
  const streamId = streamIdOf(append.userId);
  const metadata = metadataFor(append.context, append.occurredAt);
  const events: NewEvent[] = append.events.map((event, index) => ({
    id: deterministicUuid(append.commandId, streamId, String(index)),
    type: event.type,
    data: event.data,
    metadata,
  }));
  return eventStore.appendToStream(streamId, events, { expectedRevision: append.expectedRevision });
}
