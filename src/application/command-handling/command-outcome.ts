import type { Position } from '../ports/position.js';
import type { CommandOptions, CommandResult } from './handle-command.js';

/** What the HTTP edge answers for an accepted command (API.md "Command results"). */
export type CommandOutcome = {
  readonly id: string;
  readonly streamId: string;
  readonly version: number;
  readonly position: Position;
};

export function outcome(id: string, result: CommandResult<unknown, unknown>): CommandOutcome {
  return { id, streamId: result.streamId, version: result.version, position: result.position };
}

/**
 * The options for a step on another stream than the one the caller pinned: its `If-Match`
 * speaks of the main aggregate only.
 */
export function unpinned(request: CommandOptions): CommandOptions {
  return { commandId: request.commandId, context: request.context, ...(request.freshCommandId ? { freshCommandId: true } : {}) };
}

/** A step that undoes an earlier step of the same command needs event ids of its own. */
export function compensating(request: CommandOptions, step: string): CommandOptions {
  return { commandId: `${request.commandId}:undo:${step}`, context: request.context, ...(request.freshCommandId ? { freshCommandId: true } : {}) };
}
