#!/usr/bin/env node
// The `lastmile` command: dispatches to one file per subcommand.
import { LastmileError } from '../engine/errors.js';
import { UsageError } from './args.js';

const USAGE = `usage: lastmile <command> [options]

commands:
  run [model] [--input name=file ...] [--backend cpu|webgpu] [--dim name=N] [--out dir] [--json] [--seed N] [--profile] [--trace file]
  inspect <model> [--backend cpu|webgpu] [--json]
  conformance [path ...] [--backend cpu|webgpu] [--json file] [--md file] [--filter regex]
              [--rtol x] [--atol y] [--expectations file] [--update]
  bench [model] [--backend cpu|webgpu] [--threads N] [--inputs dir] [--dim name=N] [--compare ort-node,ort-web|none]
        [--time s] [--warmup s] [--json file] [--md file] [--liftoff] [--seed N]
`;

const commands: Record<string, () => Promise<{ default?: unknown } & Record<string, (argv: string[]) => Promise<number>>>> = {
  conformance: () => import('./conformance.js') as never,
  run: () => import('./run.js') as never,
  inspect: () => import('./inspect.js') as never,
  bench: () => import('./bench.js') as never,
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') { process.stdout.write(USAGE); return cmd ? 0 : 2; }
  const load = commands[cmd];
  if (!load) { process.stderr.write(`lastmile: unknown command '${cmd}'\n${USAGE}`); return 2; }
  const mod = await load();
  const fn = mod[`${cmd}Command`];
  return fn(rest);
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e) => {
  if (e instanceof UsageError) { process.stderr.write(`lastmile: ${e.message}\n`); process.exitCode = 2; return; }
  if (e instanceof LastmileError) { process.stderr.write(`lastmile: ${e.name}: ${e.message}\n`); process.exitCode = 1; return; }
  process.stderr.write(`lastmile: internal error: ${(e as Error)?.stack ?? e}\n`);
  process.exitCode = 70;
});
