// Where a node runs on a WebGPU session. Small int64 shape arithmetic and control flow stay on the CPU by
// design; every other node needs a GPU kernel that accepts its dtypes, or it is a fallback (reported,
// and refused under `strict`).
import type { DType } from './dtype.js';
import type { Step } from './plan.js';
import { lookupGpu } from '../ops/registry.js';
import { GPU_DTYPES } from '../kernels/webgpu/runner.js';

export interface Placement { device: 'gpu' | 'cpu'; reason: string; fallback: boolean }

/** Ops whose work is bookkeeping or control: running them on the CPU costs nothing worth a kernel. */
export const CPU_BY_DESIGN: ReadonlySet<string> = new Set([
  'Shape', 'Size', 'Constant', 'ConstantOfShape', 'Range', 'If', 'Loop', 'Scan', 'Optional', 'OptionalHasElement', 'OptionalGetElement',
  'SequenceConstruct', 'SequenceEmpty', 'SequenceAt', 'SequenceInsert', 'SequenceErase', 'SequenceLength', 'SplitToSequence',
  'ConcatFromSequence', 'SequenceMap', 'StringNormalizer', 'StringSplit', 'StringConcat', 'RegexFullMatch', 'ImageDecoder',
]);
const SHAPE_DTYPES = new Set<DType | undefined>(['int64', 'bool']);

/** An input's element type, 'nontensor' for sequences and optionals, undefined when unknown. */
export type InputKind = DType | 'nontensor' | undefined;

export function place(step: Step, kinds: InputKind[], f16: boolean): Placement {
  const { node } = step;
  if (CPU_BY_DESIGN.has(node.opType)) return { device: 'cpu', reason: 'bookkeeping/control op: CPU by design', fallback: false };
  if (kinds.includes('nontensor')) return { device: 'cpu', reason: 'sequence/optional values live on the CPU by design', fallback: false };
  const dtypes = kinds as (DType | undefined)[];
  const def = lookupGpu(node.domain, node.opType, step.opset);
  const data = dtypes.filter((_, i) => !def?.cpuInputs?.includes(i));
  if (data.length && data.every((d) => SHAPE_DTYPES.has(d))) return { device: 'cpu', reason: 'int64/bool shape arithmetic: CPU by design', fallback: false };
  if (!def) return { device: 'cpu', reason: 'no WebGPU kernel for this op', fallback: true };
  const bad = data.find((d) => d !== undefined && (!GPU_DTYPES.has(d) || (d === 'float16' && !f16)));
  if (bad) return { device: 'cpu', reason: `dtype ${bad} has no GPU storage on this adapter`, fallback: true };
  const why = def.reject?.(dtypes, step.attrs, { node, opset: step.opset, f16 });
  if (why) return { device: 'cpu', reason: why, fallback: true };
  return { device: 'gpu', reason: 'WebGPU kernel', fallback: false };
}
