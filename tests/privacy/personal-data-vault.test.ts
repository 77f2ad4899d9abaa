import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/application/ports/event-store.js';
import { SubjectKeyUnreadableError } from '../../src/application/ports/subject-keys.js';
import { KeyStoreUnavailableError, PersonalDataVault } from '../../src/application/privacy/personal-data-vault.js';
import { erasedPlaceholder } from '../../src/domain/shared/personal-data.js';
import { MemorySubjectKeyStore } from '../../src/infrastructure/privacy/memory-subject-key-store.js';

const paths = [['reason'], ['contact', 'email']];

async function sealedEvent(vault: PersonalDataVault, subjectId: string, reason: string, email = 'ada@example.com') {
  const { data, personalData } = await vault.seal(subjectId, { appointmentId: 'a-1', reason, contact: { email, phone: null } }, paths);
  const metadata: JsonObject = personalData ? { personalData } : {};
  return { data, metadata };
}

describe('PersonalDataVault', () => {
  it('seals the marked fields, leaves the rest, and says whose key sealed which', async () => {
    const vault = new PersonalDataVault(new MemorySubjectKeyStore());
    const event = await sealedEvent(vault, 'patient-1', 'migraine since Monday');
    expect(event.data.appointmentId).toBe('a-1');
    expect(JSON.stringify(event)).not.toContain('migraine');
    expect(JSON.stringify(event)).not.toContain('ada@example.com');
    expect(event.metadata).toEqual({ personalData: { subjectId: 'patient-1', fields: ['reason', 'contact.email'] } });
  });

  test.prop([fc.string(), fc.string({ minLength: 1 })])('reveals exactly what it sealed', async (reason, subjectId) => {
    const vault = new PersonalDataVault(new MemorySubjectKeyStore());
    const [revealed] = await vault.reveal([await sealedEvent(vault, subjectId, reason)]);
    expect(revealed?.data).toEqual({ appointmentId: 'a-1', reason, contact: { email: 'ada@example.com', phone: null } });
  });

  it('reveals [erased] once the subject is erased, in this process and in any other', async () => {
    const keys = new MemorySubjectKeyStore();
    const writer = new PersonalDataVault(keys);
    const otherProcess = new PersonalDataVault(keys);
    const event = await sealedEvent(writer, 'patient-1', 'migraine');
    await writer.erase('patient-1', new Date());
    for (const vault of [writer, otherProcess]) {
      const [revealed] = await vault.reveal([event]);
      expect(revealed?.data).toMatchObject({ reason: erasedPlaceholder, contact: { email: erasedPlaceholder } });
    }
  });

  it('seals nothing readable for an erased subject again', async () => {
    const vault = new PersonalDataVault(new MemorySubjectKeyStore());
    await vault.erase('patient-1', new Date());
    const event = await sealedEvent(vault, 'patient-1', 'new complaint');
    expect(event.data.reason).toBe(erasedPlaceholder);
  });

  it('reveals a field sealed after the erasure as [erased] also where the destroyed key is still in memory', async () => {
    const keys = new MemorySubjectKeyStore();
    const stillCaching = new PersonalDataVault(keys);
    await sealedEvent(stillCaching, 'patient-1', 'migraine');
    const eraser = new PersonalDataVault(keys);
    await eraser.erase('patient-1', new Date());
    const afterErasure = await sealedEvent(eraser, 'patient-1', 'cancelled: feeling better');

    const [revealed] = await stillCaching.reveal([afterErasure]);
    expect(revealed?.data).toMatchObject({ reason: erasedPlaceholder, contact: { email: erasedPlaceholder } });
  });

  it('tells a subject erased by another process, though it still holds their live key in memory', async () => {
    // Given a process that sealed for a patient (their key in memory), and one that never did
    const keys = new MemorySubjectKeyStore();
    const stillCaching = new PersonalDataVault(keys);
    await sealedEvent(stillCaching, 'patient-1', 'migraine');
    expect(await stillCaching.isErased('patient-1')).toBe(false);
    expect(await new PersonalDataVault(keys).isErased('patient-2')).toBe(false);

    // When another process erases the patient
    await new PersonalDataVault(keys).erase('patient-1', new Date());

    // Then the first process tells them erased
    expect(await stillCaching.isErased('patient-1')).toBe(true);
  });

  it('tells whether a subject is erased without unwrapping their key, so one that does not unwrap can still be erased', async () => {
    // Given a store whose live keys cannot be read for a patient
    const keys = new MemorySubjectKeyStore();
    await keys.obtain('patient-1');
    const unreadableKeys = Object.assign(Object.create(keys) as MemorySubjectKeyStore, {
      find: () => Promise.reject(new SubjectKeyUnreadableError('the data key of subject patient-1 does not open')),
    });
    const vault = new PersonalDataVault(unreadableKeys);

    // Then the patient reads as not erased, and once erased as erased
    expect(await vault.isErased('patient-1')).toBe(false);
    await vault.erase('patient-1', new Date());
    expect(await new PersonalDataVault(unreadableKeys).isErased('patient-1')).toBe(true);
  });

  it('reports a key store that does not answer whether a subject is erased as unavailable, a passing fault', async () => {
    const keys = new MemorySubjectKeyStore();
    const awayKeys = Object.assign(Object.create(keys) as MemorySubjectKeyStore, {
      isErased: () => Promise.reject(new Error('connection terminated')),
    });

    await expect(new PersonalDataVault(awayKeys).isErased('patient-1')).rejects.toBeInstanceOf(KeyStoreUnavailableError);
  });

  it('keeps an erasure final when a key lookup begun before it ends after it', async () => {
    const keys = new MemorySubjectKeyStore();
    const key = await keys.obtain('patient-1');
    let answer = (_: typeof key) => {};
    const slowKeys = Object.assign(Object.create(keys) as MemorySubjectKeyStore, {
      obtain: () => new Promise<typeof key>((resolve) => (answer = resolve)),
    });
    const vault = new PersonalDataVault(slowKeys);
    const sealing = sealedEvent(vault, 'patient-1', 'migraine');
    await vault.erase('patient-1', new Date());
    answer(key);

    expect((await sealing).data.reason).toBe(erasedPlaceholder);
    expect((await sealedEvent(vault, 'patient-1', 'again')).data.reason).toBe(erasedPlaceholder);
  });

  it('leaves events without sealed fields as they are', async () => {
    const vault = new PersonalDataVault(new MemorySubjectKeyStore());
    const plain = { data: { listingId: 'l-1' }, metadata: { actorId: 'u-1' } };
    expect(await vault.reveal([plain])).toEqual([plain]);
  });

  it('refuses a sealed value moved onto another person (the subject is bound into the ciphertext)', async () => {
    const vault = new PersonalDataVault(new MemorySubjectKeyStore());
    const ada = await sealedEvent(vault, 'ada', 'ada’s secret');
    await sealedEvent(vault, 'bob', 'x');
    const moved = { data: ada.data, metadata: { personalData: { subjectId: 'bob', fields: ['reason'] } } };
    await expect(vault.reveal([moved])).rejects.toThrow();
  });

  it('fetches the keys of a whole batch in one round trip', async () => {
    const keys = new MemorySubjectKeyStore();
    const events = [];
    const writer = new PersonalDataVault(keys);
    for (const subject of ['a', 'b', 'c']) events.push(await sealedEvent(writer, subject, `reason of ${subject}`));
    let finds = 0;
    const counting = new PersonalDataVault({ ...keys, obtain: (id) => keys.obtain(id), isErased: (id) => keys.isErased(id), destroy: (id) => keys.destroy(id), find: (ids) => (finds++, keys.find(ids)) });
    const revealed = await counting.reveal(events);
    expect(revealed.map((event) => event.data.reason)).toEqual(['reason of a', 'reason of b', 'reason of c']);
    expect(finds).toBe(1);
  });
});
