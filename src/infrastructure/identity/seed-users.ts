import { randomBytes, randomUUID } from 'node:crypto';
import type { IdentityService } from '../../application/identity/identity.service.js';
import type { CommandContext } from '../../application/metadata.js';
import { DomainError } from '../../domain/shared/domain-error.js';
import type { UserRole } from '../../domain/user/user.events.js';

export type SeedOptions = {
  readonly adminEmail: string;
  /** Unset: a password is generated and printed once. */
  readonly adminPassword?: string | undefined;
  readonly auditorEmail: string;
};

/**
 * The accounts a fresh installation needs before anybody can sign in as staff: an admin and
 * an auditor. Running it again leaves existing accounts alone (and prints that it did).
 */
export async function seedUsers(identity: IdentityService, options: SeedOptions, print: (line: string) => void): Promise<void> {
  const requestId = randomUUID();
  // The seed acts as an admin who is an auditor, which is what allows it to hand out ADMIN and AUDITOR.
  const context: CommandContext = {
    actor: { id: 'system:seed', roles: ['ADMIN', 'AUDITOR'] },
    requestId,
    correlationId: requestId,
    causationId: requestId,
  };
  const accounts: { email: string; password: string | undefined; name: string; roles: UserRole[] }[] = [
    { email: options.adminEmail, password: options.adminPassword, name: 'Administrator', roles: ['ADMIN'] },
    { email: options.auditorEmail, password: undefined, name: 'Auditor', roles: ['AUDITOR'] },
  ];
  for (const account of accounts) {
    const password = account.password ?? randomBytes(18).toString('base64url');
    try {
      // A fresh command id each run: a second run must hit "email taken", not replay the first.
      const result = await identity.signUp({ ...account, password }, context, randomUUID());
      const shown = account.password === undefined ? `, password ${password} (shown only this once)` : '';
      print(`created ${account.roles.join(', ')} ${account.email} (user ${result.id})${shown}`);
    } catch (error) {
      if (!(error instanceof DomainError && error.code === 'email-taken')) throw error;
      print(`${account.email} exists already; left unchanged`);
    }
  }
}
