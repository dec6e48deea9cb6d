// The `lastmile` command end to end: spawns the built CLI (dist/) on models made with GraphBuilder.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from './helpers/build.js';
import { f32, GraphBuilder, tensorProto } from '../loaders/builder.js';
import { Msg } from '../loaders/onnx-schema.js';
import { NdArray } from '../engine/tensor.js';
import { readNpy, writeNpy } from '../cli/io.js';
import { defaultModel } from '../cli/default-model.js';

const CLI = join(ROOT, 'dist/cli/main.js');
let dir: string;
const tmp = (name: string) => join(dir, name);

function lastmile(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}


/** A .npy as numpy writes it, built by hand so the reader is checked against the format, not our writer. */
function numpyFile(descr: string, shape: string, body: ArrayBufferView, fortran = false): Uint8Array {
  let h = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shape}, }`;
  h += ' '.repeat(63 - ((10 + h.length) % 64)) + '\n';
  return new Uint8Array([0x93, ...Buffer.from('NUMPY'), 1, 0, h.length & 255, h.length >> 8, ...Buffer.from(h), ...new Uint8Array(body.buffer, body.byteOffset, body.byteLength)]);
}

const pb = (a: NdArray) => Msg.Tensor.encode(Msg.Tensor.fromObject(tensorProto(a))).finish();

beforeAll(() => {
  ensureBuilt();
  dir = mkdtempSync(join(tmpdir(), 'lastmile-cli-'));
  // sum = x + y (float32), twice = ids + ids (int64), act = Relu(h) (float16).
  const g = new GraphBuilder();
  g.input('x', 'float32', ['batch', 3]);
  g.input('y', 'float32', [3]);
  g.input('input_ids', 'int64', ['batch', 'seq']);
  g.input('h', 'float16', [2]);
  g.node('Add', ['x', 'y'], {}, ['sum']);
  g.node('Add', ['input_ids', 'input_ids'], {}, ['twice']);
  g.node('Relu', ['h'], {}, ['act']);
  g.output('sum', 'float32', ['batch', 3]);
  g.output('twice', 'int64', ['batch', 'seq']);
  g.output('act', 'float16', [2]);
  writeFileSync(tmp('add.onnx'), g.model());
  writeFileSync(tmp('x.npy'), numpyFile('<f4', '(2, 3)', Float32Array.of(1, 2, 3, 4, 5, 6)));
  writeFileSync(tmp('y.pb'), pb(f32([3], [10, 20, 30])));
  writeFileSync(tmp('y.json'), '[100, 200, 300]');
  writeFileSync(tmp('ids.json'), JSON.stringify({ dtype: 'int64', dims: [2, 2], data: [1, 2, 3, '9007199254740993'] }));
  writeFileSync(tmp('h.npy'), numpyFile('<f2', '(2,)', Uint16Array.of(0x3e00, 0xc000))); // 1.5, -2
  writeFileSync(tmp('x_wrong.npy'), numpyFile('<f4', '(2, 4)', new Float32Array(8)));
  writeFileSync(tmp('x_be.npy'), numpyFile('>f4', '(2, 3)', new Float32Array(6)));
  writeFileSync(tmp('x_fortran.npy'), numpyFile('<f4', '(2, 3)', new Float32Array(6), true));

  const u = new GraphBuilder();
  u.input('x', 'float32', [2]);
  u.output(u.node('Frobnicate', [u.node('Relu', ['x'])[0]])[0], 'float32');
  writeFileSync(tmp('unsupported.onnx'), u.model());

  // An If whose branches hold one Relu and one Sigmoid: inspect must count ops inside subgraphs.
  const branch = (op: string) => { const b = new GraphBuilder(op); b.output(b.node(op, ['v'])[0], 'float32'); return b; };
  const c = new GraphBuilder();
  c.input('cond', 'bool', []);
  c.init('v', f32([2], [1, -1]));
  c.output(c.node('If', ['cond'], { then_branch: branch('Relu'), else_branch: branch('Sigmoid') })[0], 'float32');
  writeFileSync(tmp('if.onnx'), c.model());

  const q = new GraphBuilder();
  q.input('a', 'float32', [2]);
  q.node('SequenceConstruct', ['a', 'a'], {}, ['pair']);
  q.output('pair', null);
  writeFileSync(tmp('seq.onnx'), q.model());

  const model = defaultModel();
  writeFileSync(tmp('default.onnx'), model);
  writeFileSync(tmp('truncated.onnx'), model.subarray(0, model.length >> 1));
  writeFileSync(tmp('text.onnx'), 'this is a text file, not a model\n');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('lastmile run', () => {
  it('runs the embedded default model with no arguments', () => {
    const r = lastmile('run');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/probabilities\s+float32 \[1, 10\]/);
    expect(r.out).toMatch(/defaults used: batch=1/);
    expect(r.out).toMatch(/time\s+load [\d.]+ ms, run [\d.]+ ms/);
  });

  it('gives the default model deterministic, normalised probabilities (--json, --seed)', () => {
    const runs = [lastmile('run', '--json', '--dim', 'batch=2'), lastmile('run', '--json', '--dim', 'batch=2')];
    for (const r of runs) expect(r.code, r.err).toBe(0);
    const [a, b] = runs.map((r) => JSON.parse(r.out).outputs.probabilities);
    expect(a.dims).toEqual([2, 10]);
    expect(a.data).toEqual(b.data);
    for (const row of [a.data.slice(0, 10), a.data.slice(10)]) expect(row.reduce((s: number, v: number) => s + v, 0)).toBeCloseTo(1, 5);
    const other = JSON.parse(lastmile('run', '--json', '--dim', 'batch=2', '--seed', '7').out).outputs.probabilities;
    expect(other.data).not.toEqual(a.data);
  });

  it('reads .npy, .pb and JSON inputs and computes with their values', () => {
    const r = lastmile('run', tmp('add.onnx'), '--json', '--input', `x=${tmp('x.npy')}`, '--input', `y=${tmp('y.pb')}`,
      '--input', `input_ids=${tmp('ids.json')}`, '--input', `h=${tmp('h.npy')}`);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.outputs.sum).toEqual({ dtype: 'float32', dims: [2, 3], data: [11, 22, 33, 14, 25, 36] });
    expect(j.outputs.twice).toEqual({ dtype: 'int64', dims: [2, 2], data: [2, 4, 6, '18014398509481986'] });
    expect(j.outputs.act).toEqual({ dtype: 'float16', dims: [2], data: [1.5, 0] });
    expect(j.inputs.x).toEqual({ dtype: 'float32', dims: [2, 3], source: tmp('x.npy') });
    expect(j.defaults).toEqual([]);
  });

  it('takes a plain JSON array as the declared dtype and fills the rest randomly, with symbolic dims learned from given inputs', () => {
    const r = lastmile('run', tmp('add.onnx'), '--input', `y=${tmp('y.json')}`, '--input', `x=${tmp('x.npy')}`, '--dim', 'seq=4');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/sum\s+float32 \[2, 3\]\s+101 202 303 104 205 306$/m);
    expect(r.out).toMatch(/input_ids\s+int64 \[2, 4\]\s+random \(seed 0\): ints in \[0, 100\) \(looks like token ids\)/);
    expect(r.out).toMatch(/h\s+float16 \[2\]\s+random/);
  });

  it('--out writes every output as a .npy that round-trips', () => {
    const out = tmp('out');
    const r = lastmile('run', tmp('add.onnx'), '--input', `x=${tmp('x.npy')}`, '--input', `y=${tmp('y.pb')}`,
      '--input', `input_ids=${tmp('ids.json')}`, '--input', `h=${tmp('h.npy')}`, '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['act.npy', 'sum.npy', 'twice.npy']);
    const sum = readFileSync(join(out, 'sum.npy'));
    const headerEnd = 10 + sum.readUInt16LE(8);
    expect(sum.subarray(10, headerEnd).toString('latin1')).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
    expect(headerEnd % 64).toBe(0);
    expect(Array.from(readNpy(sum, 'sum').data as Float32Array)).toEqual([11, 22, 33, 14, 25, 36]);
    const twice = readNpy(readFileSync(join(out, 'twice.npy')), 'twice');
    expect([twice.dtype, twice.shape, Array.from(twice.data as BigInt64Array)]).toEqual(['int64', [2, 2], [2n, 4n, 6n, 18014398509481986n]]);
    const act = readNpy(readFileSync(join(out, 'act.npy')), 'act');
    expect([act.dtype, Array.from(act.data as Float32Array)]).toEqual(['float16', [1.5, 0]]);
    for (const [dtype, data] of [['bool', Uint8Array.of(1, 0, 1)], ['uint64', BigUint64Array.of(1n, 2n ** 63n, 3n)], ['int8', Int8Array.of(-1, 0, 1)]] as const) {
      const back = readNpy(writeNpy(new NdArray(dtype, [3], data)), dtype);
      expect([back.dtype, Array.from(back.data as ArrayLike<unknown>)]).toEqual([dtype, Array.from(data as ArrayLike<unknown>)]);
    }
  });

  it('writes a sequence output as one .npy per item', () => {
    const r = lastmile('run', tmp('seq.onnx'), '--out', tmp('seq-out'));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/pair\s+sequence of 2 tensors\n\s+\[0\] float32 \[2\]/);
    expect(readdirSync(tmp('seq-out')).sort()).toEqual(['pair_0.npy', 'pair_1.npy']);
    expect(readNpy(readFileSync(tmp('seq-out/pair_1.npy')), 'pair_1').shape).toEqual([2]);
  });

  it('carries NaN and infinities through JSON in both directions', () => {
    writeFileSync(tmp('y_nonfinite.json'), JSON.stringify({ dtype: 'float32', dims: [3], data: ['NaN', 'Infinity', '-Infinity'] }));
    const r = lastmile('run', tmp('add.onnx'), '--json', '--input', `x=${tmp('x.npy')}`, '--input', `y=${tmp('y_nonfinite.json')}`);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).outputs.sum.data).toEqual(['NaN', 'Infinity', '-Infinity', 'NaN', 'Infinity', '-Infinity']);
  });

  it('--profile prints the time per op type', () => {
    const r = lastmile('run', tmp('add.onnx'), '--profile');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/profile/);
    expect(r.out).toMatch(/^\s+Add\s+2\s+[\d.]+ ms\s+[\d.]+%$/m);
    expect(r.out).toMatch(/^\s+Relu\s+1\s+[\d.]+ ms/m);
    expect(JSON.parse(lastmile('run', tmp('add.onnx'), '--profile', '--json').out).profile.map((p: { op: string }) => p.op).sort()).toEqual(['Add', 'Relu']);
  });
});

describe('lastmile inspect', () => {
  it('reports opsets, I/O with symbolic dims, the op histogram, parameters and per-backend support', () => {
    const r = lastmile('inspect', tmp('default.onnx'));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/ir version\s+8/);
    expect(r.out).toMatch(/producer\s+lastmile-builder/);
    expect(r.out).toMatch(/opsets\s+ai\.onnx 17/);
    expect(r.out).toMatch(/image\s+float32 \[batch, 3, 32, 32\]/);
    expect(r.out).toMatch(/probabilities\s+float32 \[batch, 10\]/);
    expect(r.out).toMatch(/^\s+Conv\s+17\s+4\s+yes\s+yes$/m);
    const j = JSON.parse(lastmile('inspect', tmp('default.onnx'), '--json').out);
    const count = Object.fromEntries(j.ops.map((o: { op: string; count: number }) => [o.op, o.count]));
    expect(count).toEqual({ Conv: 4, BatchNormalization: 4, Relu: 4, Add: 1, GlobalAveragePool: 1, Flatten: 1, Gemm: 1, Softmax: 1 });
    // 3x3 convs 3->8, 8->16, 16->16 twice; 4 BN layers of 4 vectors; fc 16->10 with bias.
    const params = 9 * (3 * 8 + 8 * 16 + 2 * 16 * 16) + 4 * (8 + 16 + 16 + 16) + 16 * 10 + 10;
    expect(j.parameters).toEqual({ count: params, bytes: 4 * params, initializers: 22 });
    expect(j.inputs).toEqual([{ name: 'image', dtype: 'float32', shape: ['batch', 3, 32, 32] }]);
    expect(j.ops.every((o: { support: { webgpu: string } }) => o.support.webgpu === 'yes' || o.support.webgpu.startsWith('no'))).toBe(true);
  });

  it('counts ops inside subgraphs', () => {
    const j = JSON.parse(lastmile('inspect', tmp('if.onnx'), '--json').out);
    expect(j.ops.map((o: { op: string }) => o.op).sort()).toEqual(['If', 'Relu', 'Sigmoid']);
    expect(j.nodes).toBe(3);
  });

  it('succeeds on a model with an op we lack and lists it as unsupported', () => {
    const r = lastmile('inspect', tmp('unsupported.onnx'));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^\s+Frobnicate\s+17\s+1\s+no\s+no$/m);
    expect(r.out).toMatch(/^\s+Relu\s+17\s+1\s+yes/m);
    expect(r.out).toMatch(/cpu: UNSUPPORTED ops: Frobnicate$/m);
    expect(JSON.parse(lastmile('inspect', tmp('unsupported.onnx'), '--json').out).unsupported.cpu).toEqual(['Frobnicate']);
  });
});

describe('errors: one clear line and a non-zero exit', () => {
  const fails = (r: ReturnType<typeof lastmile>, code: number, pattern: RegExp) => {
    expect(r.code).toBe(code);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).toMatch(pattern);
    expect(r.out).toBe('');
  };

  for (const cmd of ['run', 'inspect']) {
    it(`${cmd}: truncated file`, () => fails(lastmile(cmd, tmp('truncated.onnx')), 1, /ModelLoadError: .*truncated\.onnx: not a valid ONNX model.*truncated/));
    it(`${cmd}: not an ONNX file`, () => fails(lastmile(cmd, tmp('text.onnx')), 1, /ModelLoadError: .*text\.onnx: not a(?: valid)? ONNX model/));
    it(`${cmd}: missing file`, () => fails(lastmile(cmd, tmp('nope.onnx')), 1, /ModelLoadError: cannot read model file '.*nope\.onnx'.*no such file/));
  }

  it('run: a model with an op we lack', () =>
    fails(lastmile('run', tmp('unsupported.onnx')), 1, /UnsupportedOpError: unsupported op Frobnicate \(opset 17\) at node 'Frobnicate_1'/));

  it('run: wrong input shape', () =>
    fails(lastmile('run', tmp('add.onnx'), '--input', `x=${tmp('x_wrong.npy')}`), 1, /InputError: input 'x': dim 1 should be 3, got 4/));

  it('run: symbolic dim that disagrees with --dim', () =>
    fails(lastmile('run', tmp('add.onnx'), '--dim', 'batch=5', '--input', `x=${tmp('x.npy')}`), 1, /InputError: input 'x': dim 0 \('batch'\) is 2, but 'batch' is 5/));

  it('run: big-endian and Fortran-order .npy', () => {
    fails(lastmile('run', tmp('add.onnx'), '--input', `x=${tmp('x_be.npy')}`), 1, /InputError: .*big-endian dtype '>f4' is not supported/);
    fails(lastmile('run', tmp('add.onnx'), '--input', `x=${tmp('x_fortran.npy')}`), 1, /InputError: .*Fortran-order arrays are not supported/);
  });

  it('run: missing input file, unknown input, bad JSON', () => {
    fails(lastmile('run', tmp('add.onnx'), '--input', 'x=absent.npy'), 1, /InputError: input 'x': cannot read 'absent\.npy'/);
    fails(lastmile('run', tmp('add.onnx'), '--input', `z=${tmp('x.npy')}`), 2, /no input 'z'; its inputs are: x, y, input_ids, h/);
    writeFileSync(tmp('ragged.json'), '[[1, 2], [3]]');
    fails(lastmile('run', tmp('add.onnx'), '--input', `x=${tmp('ragged.json')}`), 1, /InputError: .*ragged nested array/);
  });

  it('usage errors exit 2', () => {
    fails(lastmile('run', tmp('add.onnx'), '--dim', 'bacth=2'), 2, /--dim bacth: no input has a dim named 'bacth' \(symbolic dims: batch, seq\)/);
    fails(lastmile('run', '--backend', 'metal'), 2, /backend 'metal' is not available/);
    fails(lastmile('inspect'), 2, /inspect takes exactly one model file/);
  });
});
