/**
 * A business rule refused a command. `code` names the rule in kebab-case (it becomes the last
 * segment of the problem `type` at the HTTP edge); nothing here knows about HTTP.
 */
export class DomainError<Code extends string = string> extends Error {
  override readonly name = 'DomainError';
  constructor(
    readonly code: Code,
    message: string,
    /** Facts a client needs to act on the refusal (e.g. which appointments stand in the way). */
    readonly details?: Readonly<Record<string, string | number | boolean | string[]>>,
  ) {
    super(message);
  }
}

/** The command names an aggregate that does not exist (yet, or in this stream). */
export class NotFoundError extends DomainError<'not-found'> {
  constructor(what: string) {
    super('not-found', `${what} does not exist`);
  }
}
