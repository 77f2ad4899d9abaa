import { randomBytes } from 'node:crypto';
import type { SubjectKey, SubjectKeyStore } from '../../application/ports/subject-keys.js';

/** Data keys in memory: for unit tests and benchmarks that run without PostgreSQL. */
export class MemorySubjectKeyStore implements SubjectKeyStore {
  private readonly keys = new Map<string, SubjectKey>();

  obtain(subjectId: string): Promise<SubjectKey> {
    let key = this.keys.get(subjectId);
    if (key === undefined) {
      key = randomBytes(32);
      this.keys.set(subjectId, key);
    }
    return Promise.resolve(key);
  }

  find(subjectIds: readonly string[]): Promise<ReadonlyMap<string, SubjectKey>> {
    return Promise.resolve(new Map(subjectIds.flatMap((id) => {
      const key = this.keys.get(id);
      return key === undefined ? [] : [[id, key] as const];
    })));
  }

  isErased(subjectId: string): Promise<boolean> {
    return Promise.resolve(this.keys.get(subjectId) === 'erased');
  }

  destroy(subjectId: string): Promise<void> {
    this.keys.set(subjectId, 'erased');
    return Promise.resolve();
  }
}
