import { hash, verify } from '@node-rs/argon2';
import type { PasswordHasher } from '../../application/identity/identity.ports.js';

/**
 * argon2id (the library's default algorithm) with the library's defaults, which are OWASP's
 * recommended minimum: 19 MiB of memory, 2 passes, 1 lane. Parameters and salt are stored in
 * the hash string, so raising them later only affects new hashes.
 */
export class Argon2PasswordHasher implements PasswordHasher {
  async hash(password: string): Promise<string> {
    return hash(password);
  }

  async verify(passwordHash: string, password: string): Promise<boolean> {
    try {
      return await verify(passwordHash, password);
    } catch {
      // A malformed hash proves nothing about the password.
      return false;
    }
  }
}
