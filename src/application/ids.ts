import { hash } from 'node:crypto';

/**
 * A name-based UUID (version 5 layout, SHA-1): the same inputs always give the same id. Event
 * ids are derived from the command id this way, so a retried command appends nothing twice.
 */
export function deterministicUuid(...parts: readonly string[]): string {
  // One-shot hash: no Hash object per id (every command derives several).
  const bytes = hash('sha1', parts.join('\u0000'), 'buffer').subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
