// Minimal flag parser: `--name value`, `--name=value`, repeated flags collect, bare words are positionals.
export interface Parsed { positional: string[]; flags: Map<string, string[]> }

export function parseArgs(argv: string[], booleans: string[] = []): Parsed {
  const positional: string[] = [], flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) { positional.push(a); continue; }
    let [name, value] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (value === undefined) {
      if (booleans.includes(name)) value = 'true';
      else if (i + 1 < argv.length) value = argv[++i];
      else throw new UsageError(`flag --${name} needs a value`);
    }
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return { positional, flags };
}

export class UsageError extends Error {}

export const flag = (p: Parsed, name: string) => p.flags.get(name)?.at(-1);
export const flags = (p: Parsed, name: string) => p.flags.get(name) ?? [];
export function numFlag(p: Parsed, name: string, def: number): number {
  const v = flag(p, name);
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} expects a number, got '${v}'`);
  return n;
}
