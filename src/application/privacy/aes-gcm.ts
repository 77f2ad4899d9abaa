import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

const ivBytes = 12;
const tagBytes = 16;

/**
 * AES-256-GCM as every secret here is stored: `iv (12) ‖ tag (16) ‖ ciphertext`, with a random
 * IV per message and optional additional data that must match on opening.
 */
export function sealBytes(key: Buffer, plain: Buffer, additionalData?: Buffer): Buffer {
  const iv = randomBytes(ivBytes);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  if (additionalData) cipher.setAAD(additionalData);
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]);
}

/** The plaintext of `sealBytes`'s output; throws when it was altered or the key or data differ. */
export function openBytes(key: Buffer, sealed: Buffer, additionalData?: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, ivBytes));
  if (additionalData) decipher.setAAD(additionalData);
  decipher.setAuthTag(sealed.subarray(ivBytes, ivBytes + tagBytes));
  return Buffer.concat([decipher.update(sealed.subarray(ivBytes + tagBytes)), decipher.final()]);
}
