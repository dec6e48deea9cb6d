import { it } from 'vitest';
import { GraphBuilder } from '../../loaders/builder.js';
import { randomF32, rng } from '../helpers/oracle.js';
import { describeGpu, expectGpuMatchesCpu } from '../helpers/gpu.js';

const UNARY = ['Abs', 'Neg', 'Exp', 'Sqrt', 'Floor', 'Ceil', 'Round', 'Sign', 'Erf', 'Sin', 'Cos', 'Tanh', 'Sigmoid', 'Relu', 'Softsign', 'Softplus', 'HardSwish'];
const BINARY = ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'PRelu'];

function model(op: string, shapes: number[][], attrs = {}) {
  const g = new GraphBuilder();
  const ins = shapes.map((s, i) => g.input(`x${i}`, 'float32', s));
  g.output(g.node(op, ins, attrs)[0], null);
  return g.model({ opset: 20 });
}

describeGpu('WebGPU elementwise kernels match the CPU backend', () => {
  it('unary ops over random shapes', async () => {
    const r = rng(3);
    for (const op of UNARY) {
      const shape = Array.from({ length: r.int(0, 4) }, () => r.int(1, 5));
      await expectGpuMatchesCpu(model(op, [shape]), { x0: randomF32(shape, r, op === 'Sqrt' ? 0 : -3, 3) });
    }
  });
  it('binary ops with broadcasting, one pipeline per rank', async () => {
    const r = rng(5);
    for (const op of BINARY) {
      for (let k = 0; k < 3; k++) {
        const out = Array.from({ length: r.int(1, 4) }, () => r.int(1, 4));
        const b = out.slice(r.int(0, out.length)).map((d) => (r.next() < 0.3 ? 1 : d));
        const lo = op === 'Pow' ? 0.1 : -2;
        await expectGpuMatchesCpu(model(op, [out, b]), { x0: randomF32(out, r, lo, 2), x1: randomF32(b, r, op === 'Div' ? 0.5 : -2, 2) });
      }
    }
  });
  it('Where with a bool condition and LeakyRelu with its alpha', async () => {
    const g = new GraphBuilder();
    const c = g.node('Greater', [g.input('a', 'float32', [2, 3]), g.input('b', 'float32', [3])])[0];
    const w = g.node('Where', [c, 'a', 'b'])[0];
    g.output(g.node('LeakyRelu', [w], { alpha: 0.3 })[0], null);
    const r = rng(9);
    await expectGpuMatchesCpu(g.model({ opset: 17 }), { a: randomF32([2, 3], r), b: randomF32([3], r) });
  });
});
