import { DomainError } from './domain-error.js';

/**
 * The actor may not do this to this aggregate (not the owner, not the author, not an admin).
 * A separate code so that the HTTP edge can answer 403 instead of the 409 of other rules.
 */
export class ForbiddenError extends DomainError<'forbidden'> {
  constructor(message: string) {
    super('forbidden', message);
  }
}
