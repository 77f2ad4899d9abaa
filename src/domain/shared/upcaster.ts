/**
 * One step that lifts an event type's stored data from one schema version to the next. Pure;
 * old shapes are never edited. The data comes from storage, so it is parsed before it is trusted.
 * `metadata` is the event's stored metadata (who, when: the application's `EventMetadata`),
 * unparsed too: for a fact an old shape left to the metadata alone, such as who acted.
 */
export type EventUpcaster<Event extends { readonly type: string; readonly data: object }> = {
  readonly type: Event['type'];
  readonly fromVersion: number;
  readonly toVersion: number;
  upcast(data: unknown, metadata: Readonly<Record<string, unknown>>): Event['data'];
};
