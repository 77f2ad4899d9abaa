import { configSchema, settingDescriptions, type Config } from './config.js';

/** What a setting is when the environment leaves it out. */
function defaultOf(name: keyof Config): string {
  const parsed = configSchema.shape[name].safeParse(undefined);
  if (!parsed.success || parsed.data === undefined) return '—';
  return `\`${Array.isArray(parsed.data) ? parsed.data.join(',') : String(parsed.data)}\``;
}

/** The README's configuration table, made from the schema so that the two cannot drift apart. */
export function configurationTable(): string {
  const names = Object.keys(configSchema.shape).filter((name): name is keyof Config => name in settingDescriptions);
  const rows = names.map((name) => `| \`${name}\` | ${defaultOf(name)} | ${settingDescriptions[name].replaceAll('|', '\\|')} |`);
  return ['| setting | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(`${configurationTable()}\n`);
