import type { Projection } from '../projections/runtime/projection.js';
import { parseCommandLine, UsageError } from './config/command-line.js';
import { configSchema, type Config } from './config/config.js';

export const mainUsage = 'usage: main [--role all|command|query|projector] | seed [--demo|--no-demo] | migrate | rebuild <read model> | --help';

/** What `main` was asked to do. */
export type MainCommand =
  | { readonly command: 'start'; readonly role: Config['ROLE'] | undefined }
  /** `seed --demo` true, `seed --no-demo` false, neither `undefined`. */
  | { readonly command: 'seed'; readonly demo: boolean | undefined }
  | { readonly command: 'migrate' }
  | { readonly command: 'rebuild'; readonly projection: Projection };

/**
 * The command line (`args`, by default the process's), or a UsageError saying what is wrong with
 * it; `undefined` once `--help` has been answered. Nothing it does not use is let through: an
 * argument ignored (`migrate extra`, `seed --role command`) would let a typo pass unnoticed.
 */
export function parseMainCommandLine(readModels: readonly Projection[], args?: string[]): MainCommand | undefined {
  const parsed = parseCommandLine(
    { args, options: { role: { type: 'string' }, demo: { type: 'boolean' }, 'no-demo': { type: 'boolean' } }, allowPositionals: true },
    mainUsage,
  );
  if (!parsed) return undefined;
  const refuse = (problem: string) => new UsageError(problem, mainUsage);
  const [command, ...rest] = parsed.positionals;
  const { role, demo, 'no-demo': noDemo } = parsed.values;
  // A mistyped command (`migrat`) started the whole service, migrations and all.
  if (command !== undefined && !['seed', 'migrate', 'rebuild'].includes(command)) throw refuse(`unknown command ${command}`);
  if (demo && noDemo) throw refuse('--demo and --no-demo: give one of them');
  if ((demo || noDemo) && command !== 'seed') throw refuse(`--${demo ? 'demo' : 'no-demo'} is an option of seed only`);
  if (role !== undefined && command !== undefined) throw refuse(`--role is an option of the service only, not of ${command}`);
  if (command === 'rebuild') {
    const [name, ...extra] = rest;
    const names = readModels.map((projection) => projection.name).join(', ');
    const projection = readModels.find((candidate) => candidate.name === name);
    if (name === undefined) throw refuse(`name a read model to rebuild: ${names}`);
    if (!projection) throw refuse(`no read model ${name}: one of ${names}`);
    if (extra.length > 0) throw refuse(`rebuild takes one read model; unexpected ${extra.join(' ')}`);
    return { command, projection };
  }
  if (rest.length > 0) throw refuse(`${command ?? 'the service'} takes no arguments; unexpected ${rest.join(' ')}`);
  if (command === 'seed') return { command, demo: demo ? true : noDemo ? false : undefined };
  if (command === 'migrate') return { command };
  if (role === undefined) return { command: 'start', role };
  const checked = configSchema.shape.ROLE.safeParse(role);
  if (!checked.success) throw refuse(`--role ${role}: must be one of all, command, query, projector`);
  return { command: 'start', role: checked.data };
}
