/**
 * Settings of the runner's environment no child of a test inherits. `EVENTSTORE_URL` is set to
 * run the contract suite against EventStoreDB (see "EventStoreDB" in the README); a CLI or a role
 * started with it would read and write events there while the test wrote them to PostgreSQL.
 */
const neverInherited = ['EVENTSTORE_URL'] as const;

/**
 * The environment of a process a test starts: the runner's own, less `neverInherited` and the
 * names in `unset` (e.g. `DATABASE_URL`, for a child that must use its embedded PostgreSQL),
 * with `settings` laid over it.
 */
export function childEnv(settings: Readonly<Record<string, string>> = {}, unset: readonly string[] = []): NodeJS.ProcessEnv {
  const inherited: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [...neverInherited, ...unset]) delete inherited[name];
  return { ...inherited, ...settings };
}
