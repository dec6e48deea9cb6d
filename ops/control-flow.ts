// If, Loop and Scan. Bodies run through ctx.subgraph, which sees the node's scope as its outer scope;
// values flow in and out of a body by position, as ONNX matches them.
import type { Dim, Graph, TypeInfo } from '../engine/graph.js';
import { NdArray, type Value } from '../engine/tensor.js';
import { tensorType } from './infer-rules.js';
import { fail, optTensor, register, tensorAt, type Attrs, type RunCtx } from './registry.js';
import { normAxis, slab, stack } from './sequence.js';

/** Loops may run as long as cond stays true, but a trip count beyond this is a broken model. */
const MAX_TRIP_COUNT = 2 ** 31;

const graphAttr = (a: Attrs, name: string): Graph => a.graph(name) ?? (() => { throw a.error(`missing required attribute '${name}'`); })();

function truthy(ctx: RunCtx, v: Value | undefined, what: string): boolean {
  if (!(v instanceof NdArray) || v.size !== 1) fail(ctx, `${what} must be a single-element tensor`);
  return Boolean(v.data[0]);
}

function tensorOut(ctx: RunCtx, v: Value, what: string): NdArray {
  return v instanceof NdArray ? v : fail(ctx, `${what} must be a tensor`);
}

/** The value of an accumulated output that got no iterations: length 0 along `axis`, other dims from the
 *  body's declared output type where it fixes them all. */
function emptyStack(t: TypeInfo | undefined, axis: number, ctx: RunCtx): NdArray {
  if (t?.kind !== 'tensor' || !t.dtype) fail(ctx, 'a scan output with no iterations needs a declared element type in the body');
  const dims = t.shape?.every((d): d is number => typeof d === 'number') ? [...t.shape] : [];
  dims.splice(normAxis(ctx, axis, dims.length + 1), 0, 0);
  return NdArray.zeros(t.dtype, dims);
}

/** Items stacked along `axis` (negative counts from the back of the stacked rank). */
function accumulate(items: NdArray[], axis: number, declared: TypeInfo | undefined, ctx: RunCtx): NdArray {
  if (items.length === 0) return emptyStack(declared, axis, ctx);
  return stack(items, normAxis(ctx, axis, items[0].shape.length + 1), ctx);
}

/** Where both branches agree on kind and dtype, the output keeps the dims they share. */
function mergeTypes(a: TypeInfo | undefined, b: TypeInfo | undefined): TypeInfo | undefined {
  if (a?.kind !== 'tensor' || b?.kind !== 'tensor') return a?.kind === b?.kind ? a : undefined;
  const shape = a.shape && b.shape && a.shape.length === b.shape.length ? a.shape.map((d, i): Dim => (d === b.shape![i] ? d : null)) : undefined;
  return tensorType(a.dtype === b.dtype ? a.dtype : undefined, shape);
}

interface IfAttrs { then: Graph; else: Graph }

interface LoopAttrs { body: Graph; carried: number; scans: number }

interface ScanAttrs {
  body: Graph; states: number; scans: number; outputs: number;
  inAxes: number[]; inDirs: number[]; outAxes: number[]; outDirs: number[];
}

function readScan(a: Attrs, opset: number): ScanAttrs {
  const body = graphAttr(a, 'body'), scans = a.int('num_scan_inputs');
  // Scan-8 has a leading sequence_lens input and calls its input directions `directions`.
  const states = a.node.inputs.length - scans - (opset < 9 ? 1 : 0), outputs = body.outputs.length - states;
  if (scans < 1 || states < 0 || outputs < 0 || body.inputs.length !== states + scans) {
    throw a.error(`body takes ${body.inputs.length} inputs and gives ${body.outputs.length} outputs, which does not fit ${a.node.inputs.length} inputs with num_scan_inputs=${scans}`);
  }
  const list = (name: string, n: number) => {
    const v = a.ints(name, new Array<number>(n).fill(0));
    if (v.length !== n) throw a.error(`${name} needs ${n} entries, got ${v.length}`);
    return v;
  };
  return {
    body, states, scans, outputs,
    inAxes: opset < 9 ? new Array<number>(scans).fill(0) : list('scan_input_axes', scans),
    inDirs: list(opset < 9 ? 'directions' : 'scan_input_directions', scans),
    outAxes: opset < 9 ? new Array<number>(outputs).fill(0) : list('scan_output_axes', outputs),
    outDirs: opset < 9 ? new Array<number>(outputs).fill(0) : list('scan_output_directions', outputs),
  };
}

/** One scan over `inputs` (time along each input's axis): final states and the accumulated outputs. */
function scanOnce(ctx: RunCtx, at: ScanAttrs, states: Value[], inputs: NdArray[], steps: number): { states: Value[]; outs: NdArray[][] } {
  const body = ctx.subgraph('body');
  const axes = inputs.map((x, k) => normAxis(ctx, at.inAxes[k], x.shape.length));
  const outs: NdArray[][] = Array.from({ length: at.outputs }, () => []);
  for (let t = 0; t < steps; t++) {
    const elems = inputs.map((x, k) => slab(x, axes[k], at.inDirs[k] ? steps - 1 - t : t, 1, false));
    const res = body([...states, ...elems]);
    states = res.slice(0, at.states);
    res.slice(at.states).forEach((v, j) => outs[j].push(tensorOut(ctx, v, `scan output ${j}`)));
  }
  outs.forEach((items, j) => { if (at.outDirs[j]) items.reverse(); });
  return { states, outs };
}

/** Scan-9 and later: no batch axis, per-input and per-output axes and directions. */
function runScan(ins: (Value | undefined)[], at: ScanAttrs, ctx: RunCtx): Value[] {
  const inputs = ins.slice(at.states).map((_, k) => tensorAt(ins, at.states + k, ctx));
  const lens = inputs.map((x, k) => x.shape[normAxis(ctx, at.inAxes[k], x.shape.length)]);
  if (lens.some((l) => l !== lens[0])) fail(ctx, `scan inputs disagree on sequence length: [${lens}]`);
  const { states, outs } = scanOnce(ctx, at, ins.slice(0, at.states) as Value[], inputs, lens[0]);
  return [...states, ...outs.map((items, j) => accumulate(items, at.outAxes[j], at.body.outputs[at.states + j].type, ctx))];
}

/** Scan-8: axis 0 is a batch, axis 1 is time; each batch row runs its own scan of sequence_lens[b]
 *  steps and the scan outputs are zero-padded to the longest sequence. */
function runScan8(ins: (Value | undefined)[], at: ScanAttrs, ctx: RunCtx): Value[] {
  const lensT = optTensor(ins, 0, ctx);
  const init = ins.slice(1, 1 + at.states).map((_, k) => tensorAt(ins, 1 + k, ctx));
  const inputs = ins.slice(1 + at.states).map((_, k) => tensorAt(ins, 1 + at.states + k, ctx));
  for (const x of [...init, ...inputs]) if (x.shape.length < 1 || x.shape[0] !== inputs[0].shape[0]) fail(ctx, 'all inputs must share the batch size in axis 0');
  for (const x of inputs) if (x.shape.length < 2 || x.shape[1] !== inputs[0].shape[1]) fail(ctx, 'scan inputs must share the sequence length in axis 1');
  const batch = inputs[0].shape[0], maxLen = inputs[0].shape[1];
  const lens = lensT ? lensT.numbers() : new Array<number>(batch).fill(maxLen);
  if (lens.length !== batch || lens.some((l) => l < 0 || l > maxLen)) fail(ctx, `sequence_lens must hold ${batch} values in [0, ${maxLen}], got [${lens}]`);
  const rows = lens.map((len, b) => scanOnce(ctx, at, init.map((s) => slab(s, 0, b, 1, false)), inputs.map((x) => slab(x, 0, b, 1, false)), len));
  const finals = init.map((_, k) => stack(rows.map((r) => tensorOut(ctx, r.states[k], `state ${k}`)), 0, ctx));
  const scans = Array.from({ length: at.outputs }, (_, j) => {
    const first = rows.find((r) => r.outs[j].length > 0)?.outs[j][0];
    if (!first) return emptyBatch(at, j, batch, ctx);
    const pad = NdArray.zeros(first.dtype, first.shape);
    return stack(rows.map((r) => stack([...r.outs[j], ...new Array<NdArray>(maxLen - r.outs[j].length).fill(pad)], 0, ctx)), 0, ctx);
  });
  return [...finals, ...scans];
}

/** Scan-8 output when no row ran: [batch, 0, ...] from the declared type. */
function emptyBatch(at: ScanAttrs, j: number, batch: number, ctx: RunCtx): NdArray {
  const e = emptyStack(at.body.outputs[at.states + j].type, 0, ctx);
  return NdArray.zeros(e.dtype, [batch, ...e.shape]);
}

/** Final states have their initial values' dtypes; scan outputs the body's element dtypes. Shapes are
 *  left open: states may change shape, and the scan axis moves per attribute. */
const scanInfer = (first: number) => (ins: (TypeInfo | undefined)[], at: ScanAttrs) => [
  ...ins.slice(first, first + at.states).map((t) => (t?.kind === 'tensor' ? tensorType(t.dtype) : t)),
  ...at.body.outputs.slice(at.states).map((o) => (o.type?.kind === 'tensor' ? tensorType(o.type.dtype) : undefined)),
];

function runLoop(ins: (Value | undefined)[], at: LoopAttrs, ctx: RunCtx): Value[] {
  const mT = optTensor(ins, 0, ctx), condT = optTensor(ins, 1, ctx);
  if (mT && mT.size !== 1) fail(ctx, `trip count M must be a single value, got shape [${mT.shape}]`);
  const max = mT ? Number(mT.data[0]) : Infinity;
  if (mT && max > MAX_TRIP_COUNT) fail(ctx, `trip count M = ${max} exceeds 2^31; a loop that long is not a real model`);
  let cond = condT ? truthy(ctx, condT, 'cond') : true;
  let carried = ins.slice(2).map((v, k) => v ?? fail(ctx, `loop-carried input ${k} is missing`));
  const body = ctx.subgraph('body'), scans: NdArray[][] = Array.from({ length: at.scans }, () => []);
  for (let i = 0; i < max && cond; i++) {
    // The body's cond input is always true here: the loop only runs while cond holds.
    const res = body([new NdArray('int64', [], BigInt64Array.of(BigInt(i))), new NdArray('bool', [], Uint8Array.of(1)), ...carried]);
    cond = truthy(ctx, res[0], 'the body\'s condition output');
    carried = res.slice(1, 1 + at.carried);
    res.slice(1 + at.carried).forEach((v, j) => scans[j].push(tensorOut(ctx, v, `scan output ${j}`)));
  }
  return [...carried, ...scans.map((items, j) => accumulate(items, 0, at.body.outputs[1 + at.carried + j].type, ctx))];
}

register(
  {
    op: 'If',
    attrs: (a: Attrs): IfAttrs => ({ then: graphAttr(a, 'then_branch'), else: graphAttr(a, 'else_branch') }),
    infer: (_ins, at: IfAttrs) => at.then.outputs.map((o, i) => mergeTypes(o.type, at.else.outputs[i]?.type)),
    run: (ins, at: IfAttrs, ctx) => {
      const branch = truthy(ctx, tensorAt(ins, 0, ctx), 'cond') ? 'then_branch' : 'else_branch';
      const outs = ctx.subgraph(branch)([]);
      if (outs.length < ctx.node.outputs.length) fail(ctx, `${branch} gives ${outs.length} outputs, the node has ${ctx.node.outputs.length}`);
      return outs;
    },
  },
  {
    op: 'Loop',
    attrs: (a: Attrs): LoopAttrs => {
      // M and cond come first; with no carried values a trailing omitted cond may be left out entirely.
      const body = graphAttr(a, 'body'), carried = Math.max(0, a.node.inputs.length - 2), scans = body.outputs.length - 1 - carried;
      if (scans < 0 || body.inputs.length !== 2 + carried) {
        throw a.error(`body takes ${body.inputs.length} inputs and gives ${body.outputs.length} outputs, expected ${2 + carried} inputs and at least ${1 + carried} outputs`);
      }
      return { body, carried, scans };
    },
    // Carried tensors may change shape from one iteration to the next, so only their dtype is known.
    infer: (ins, at: LoopAttrs) => [
      ...ins.slice(2).map((t) => (t?.kind === 'tensor' ? tensorType(t.dtype) : t)),
      ...at.body.outputs.slice(1 + at.carried).map((o) => (o.type?.kind === 'tensor' ? tensorType(o.type.dtype, o.type.shape && [null, ...o.type.shape]) : undefined)),
    ],
    run: runLoop,
  },
  { op: 'Scan', since: 8, attrs: readScan, infer: scanInfer(1), run: runScan8 },
  { op: 'Scan', since: 9, attrs: readScan, infer: scanInfer(0), run: runScan },
);
