// Runs ONNX backend test cases (model.onnx + test_data_set_N/{input,output}_K.pb) and classifies each.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InferenceSession } from '../engine/session.js';
import type { TypeInfo } from '../engine/graph.js';
import type { Value } from '../engine/tensor.js';
import { loadModel } from '../loaders/onnx.js';
import { decodeValueFile } from '../loaders/tensor-proto.js';
import { compareValues, type Tolerance } from './compare.js';

export type Status = 'passed' | 'failed' | 'errored' | 'skipped';
export interface CaseResult {
  name: string; status: Status; ms: number; message: string;
  /** WebGPU runs: nodes run on the GPU, nodes in all, and the ops that fell back to the CPU. */
  gpu?: { nodes: number; total: number; fallbacks: string[] };
}

/** A path is a case folder or a folder of case folders. */
export function discoverCases(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    if (!existsSync(p) || !statSync(p).isDirectory()) throw new Error(`conformance path '${p}' is not a folder`);
    if (existsSync(join(p, 'model.onnx'))) { out.push(p); continue; }
    for (const d of readdirSync(p).sort()) if (existsSync(join(p, d, 'model.onnx'))) out.push(join(p, d));
  }
  return out;
}

const valueKind = (t: TypeInfo | undefined): 'tensor' | 'sequence' | 'optional' =>
  t?.kind === 'sequence' ? 'sequence' : t?.kind === 'optional' ? 'optional' : 'tensor';

export async function runCase(dir: string, opts: { backend: string; tol: Tolerance }): Promise<CaseResult> {
  const name = basename(dir), t0 = performance.now();
  const done = (status: Status, message = '') => ({ name, status, ms: Math.round(performance.now() - t0), message });
  let session: InferenceSession;
  try {
    const model = loadModel(readFileSync(join(dir, 'model.onnx')), { baseDir: dir, what: `${name}/model.onnx` });
    session = await InferenceSession.load(model, { executionProviders: [opts.backend], logSeverityLevel: 3 });
  } catch (e) { return done('errored', firstLine(e)); }
  const g = session.model.graph;
  const inputs = g.inputs.filter((i) => !g.initializers.has(i.name));
  const sets = readdirSync(dir).filter((d) => d.startsWith('test_data_set_')).sort();
  try {
    const r = await runSets(dir, sets, session, inputs, opts.tol, done);
    return session.backend === 'webgpu' ? { ...r, gpu: gpuUse(session) } : r;
  } finally {
    await session.release();
  }
}

async function runSets(dir: string, sets: string[], session: InferenceSession, inputs: { name: string; type?: TypeInfo }[], tol: Tolerance,
  done: (s: Status, m?: string) => CaseResult): Promise<CaseResult> {
  const g = session.model.graph;
  for (const set of sets) {
    const sdir = join(dir, set);
    try {
      const feeds = new Map<string, Value>();
      inputs.forEach((info, k) => {
        const f = join(sdir, `input_${k}.pb`);
        if (existsSync(f)) feeds.set(info.name, decodeValueFile(readFileSync(f), valueKind(info.type), `${set}/input_${k}.pb`));
      });
      const actual = await session.runValuesAsync(feeds);
      for (let k = 0; k < g.outputs.length; k++) {
        const f = join(sdir, `output_${k}.pb`);
        if (!existsSync(f)) continue;
        const expected = decodeValueFile(readFileSync(f), valueKind(g.outputs[k].type), `${set}/output_${k}.pb`);
        const diff = compareValues(expected, actual[k], tol);
        if (diff) return done('failed', `${set} output ${k} ('${g.outputs[k].name}'): ${diff}`);
      }
    } catch (e) { return done('errored', `${set}: ${firstLine(e)}`); }
  }
  return done('passed');
}

const firstLine = (e: unknown) => `${(e as Error)?.name ?? 'Error'}: ${String((e as Error)?.message ?? e).split('\n')[0]}`.slice(0, 400);

function gpuUse(session: InferenceSession): CaseResult['gpu'] {
  const ps = [...session.placements.entries()];
  return { nodes: ps.filter(([, p]) => p.device === 'gpu').length, total: ps.length, fallbacks: [...new Set(ps.filter(([, p]) => p.fallback).map(([s]) => s.node.opType))] };
}
