import { describe, it } from 'vitest';
import { GraphBuilder } from '../loaders/builder.js';
import { expectMatchesOrt, randomF32, rng } from './helpers/oracle.js';

describe('end to end', () => {
  it('Add + Relu with broadcasting matches onnxruntime-node', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', 'float32', ['batch', 3]);
    const y = g.input('y', 'float32', [3]);
    g.output(g.node('Relu', [g.node('Add', [x, y])[0]])[0], 'float32');
    const r = rng(7);
    await expectMatchesOrt(g.model(), { x: randomF32([4, 3], r), y: randomF32([3], r) });
  });
});
