/**
 * One step that lifts an event type's stored data from one schema version to the next. Pure;
 * old shapes are never edited. The data comes from storage, so it is parsed before it is trusted.
 */
export type EventUpcaster<Event extends { readonly type: string; readonly data: object }> = {
  readonly type: Event['type'];
  readonly fromVersion: number;
  readonly toVersion: number;
  upcast(data: unknown): Event['data'];
};
