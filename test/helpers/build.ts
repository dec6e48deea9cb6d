// Tests that spawn the built CLI need dist/ current with the sources.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');

/** Rebuilds dist/ when any compiled source is newer than its output (tsc emits even when some files have errors). */
export function ensureBuilt(): void {
  const stale = (d: string): boolean => readdirSync(join(ROOT, d), { withFileTypes: true }).some((e) => {
    const p = join(d, e.name);
    if (e.isDirectory()) return stale(p);
    if (!e.name.endsWith('.ts') || e.name.endsWith('.d.ts')) return false;
    const js = join(ROOT, 'dist', p.replace(/\.ts$/, '.js'));
    return !existsSync(js) || statSync(js).mtimeMs < statSync(join(ROOT, p)).mtimeMs;
  });
  if (['cli', 'bench', 'engine', 'loaders', 'ops', 'kernels', 'conformance'].some(stale)) {
    try { execSync('npx tsc -p .', { cwd: ROOT, stdio: 'ignore' }); } catch { /* type errors elsewhere: dist is still emitted */ }
  }
}
