/**
 * One page of a keyset-paginated query: `next` is the sort key of the last item when more rows
 * follow, for the caller to hand back as `after` (the HTTP edge wraps it in an opaque cursor).
 * Queries read `limit + 1` rows to know whether more follow; they never use OFFSET.
 */
export type Page<Item, Key> = { readonly items: Item[]; readonly next: Key | null };

export type PageRequest<Key> = { readonly limit: number; readonly after?: Key | undefined };

export function toPage<Row, Item, Key>(rows: readonly Row[], limit: number, item: (row: Row) => Item, key: (row: Row) => Key): Page<Item, Key> {
  const shown = rows.slice(0, limit);
  const last = shown.at(-1);
  return { items: shown.map(item), next: rows.length > limit && last !== undefined ? key(last) : null };
}

/** Amounts are `bigint` columns, which pg hands back as strings; every one fits a safe integer. */
export function amount(value: string): number {
  return Number(value);
}
