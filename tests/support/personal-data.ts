import type pg from 'pg';
import { PersonalDataVault } from '../../src/application/privacy/personal-data-vault.js';
import { MemorySubjectKeyStore } from '../../src/infrastructure/privacy/memory-subject-key-store.js';
import { PgSubjectKeyStore } from '../../src/infrastructure/privacy/pg-subject-key-store.js';

/** The master key of every test database (base64 in `MASTER_KEY` for processes a test starts). */
export const testMasterKeyText = Buffer.alloc(32, 0x5a).toString('base64');
export const testMasterKey = Buffer.from(testMasterKeyText, 'base64');

/** For tests on the in-memory event store. */
export function memoryVault(): PersonalDataVault {
  return new PersonalDataVault(new MemorySubjectKeyStore());
}

/** Data keys in the test database, as the service keeps them. */
export function pgVault(pool: pg.Pool): PersonalDataVault {
  return new PersonalDataVault(new PgSubjectKeyStore(pool, testMasterKey));
}
