// Narrow float codecs against the Cast section of the ONNX operator spec: round-to-nearest-even, the
// saturate / no-saturate tables, NaN and infinity rules, and float8e8m0's rounding modes.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  bf16ToNumber, encodeMini, f16ToNumber, FORMATS, numberToBf16, numberToF16, roundInPlace, type MiniName,
} from '../kernels/cpu/minifloat.js';
import { Msg } from '../loaders/onnx-schema.js';
import { decodeValueFile } from '../loaders/tensor-proto.js';

const f32 = (x: number) => Math.fround(x);
const isNaNPattern = (name: MiniName, p: number) => Number.isNaN(FORMATS[name].decode[p]);
const enc = (name: MiniName, x: number, saturate = true) => encodeMini(FORMATS[name], x, saturate);
// -NaN spelled by its bits: whether `-NaN` flips the sign is up to the JS engine.
const negNaN = new Float64Array(BigUint64Array.of(0xfff8000000000000n).buffer)[0];

/** 16-bit patterns whose decode-encode round trip changes them (a NaN may come back as another NaN). */
function roundTripFailures(decode: (p: number) => number, encode: (x: number) => number): number[] {
  const bad: number[] = [];
  for (let p = 0; p < 0x10000; p++) {
    const v = decode(p), q = encode(v);
    if (Number.isNaN(v) ? !Number.isNaN(decode(q)) : q !== p) bad.push(p);
  }
  return bad;
}

describe('float16', () => {
  it('round-trips every bit pattern (NaNs stay NaN)', () => {
    expect(roundTripFailures(f16ToNumber, numberToF16)).toEqual([]);
  });

  it('rounds ties to even, in normal and subnormal ranges', () => {
    expect(f16ToNumber(numberToF16(1 + 2 ** -11))).toBe(1); // halfway, 1 is even
    expect(f16ToNumber(numberToF16(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9); // halfway, rounds up to even
    expect(f16ToNumber(numberToF16(1 + 2 ** -11 + 2 ** -20))).toBe(1 + 2 ** -10); // just past halfway
    expect(numberToF16(2 ** -25)).toBe(0); // half the smallest subnormal: to even (0)
    expect(numberToF16(3 * 2 ** -25)).toBe(2); // 1.5 subnormal quanta: to even (2)
    expect(numberToF16(-(2 ** -26))).toBe(0x8000); // underflow keeps the sign
  });

  it('overflows to infinity past the largest finite half, keeps NaN and infinities', () => {
    expect(numberToF16(65504)).toBe(0x7bff);
    expect(numberToF16(65519)).toBe(0x7bff);
    expect(numberToF16(65520)).toBe(0x7c00); // tie between 65504 (odd) and 65536: to even, infinity
    expect(numberToF16(-1e6)).toBe(0xfc00);
    expect(numberToF16(Infinity)).toBe(0x7c00);
    expect(numberToF16(-Infinity)).toBe(0xfc00);
    expect(Number.isNaN(f16ToNumber(numberToF16(NaN)))).toBe(true);
    expect(numberToF16(-0)).toBe(0x8000);
  });
});

describe('bfloat16', () => {
  it('round-trips every bit pattern (NaNs stay NaN)', () => {
    expect(roundTripFailures(bf16ToNumber, numberToBf16)).toEqual([]);
  });

  it('rounds ties to even and overflows to infinity', () => {
    expect(bf16ToNumber(numberToBf16(1 + 2 ** -8))).toBe(1);
    expect(bf16ToNumber(numberToBf16(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
    expect(bf16ToNumber(numberToBf16(f32(0.47892547)))).toBe(0.478515625);
    expect(numberToBf16(3.4028234663852886e38)).toBe(0x7f80);
    expect(numberToBf16(-Infinity)).toBe(0xff80);
    expect(Number.isNaN(bf16ToNumber(numberToBf16(NaN)))).toBe(true);
  });
});

describe('float8 and float4', () => {
  const names = Object.keys(FORMATS).filter((n) => n !== 'float8e8m0') as MiniName[];

  it.each(names)('%s: every finite pattern round-trips', (name) => {
    const fmt = FORMATS[name];
    for (let p = 0; p < 1 << fmt.bits; p++) {
      const v = fmt.decode[p];
      if (Number.isNaN(v)) { expect(isNaNPattern(name, encodeMini(fmt, v))).toBe(true); continue; }
      expect(encodeMini(fmt, v, false)).toBe(p);
    }
  });

  it('decodes the formats\' extremes', () => {
    expect(FORMATS.float8e4m3fn.maxFinite).toBe(448);
    expect(FORMATS.float8e4m3fnuz.maxFinite).toBe(240);
    expect(FORMATS.float8e5m2.maxFinite).toBe(57344);
    expect(FORMATS.float8e5m2fnuz.maxFinite).toBe(57344);
    expect(FORMATS.float4e2m1.maxFinite).toBe(6);
    expect(FORMATS.float8e4m3fn.decode[0x01]).toBe(2 ** -9);
    expect(FORMATS.float8e4m3fnuz.decode[0x01]).toBe(2 ** -10);
    expect(FORMATS.float8e5m2.decode[0x7c]).toBe(Infinity);
    expect(FORMATS.float8e5m2fnuz.decode[0x01]).toBe(2 ** -17);
    expect([...FORMATS.float4e2m1.decode.subarray(0, 8)]).toEqual([0, 0.5, 1, 1.5, 2, 3, 4, 6]);
  });

  it('rounds ties to even', () => {
    expect(FORMATS.float8e4m3fn.decode[enc('float8e4m3fn', 1 + 2 ** -4)]).toBe(1);
    expect(FORMATS.float8e4m3fn.decode[enc('float8e4m3fn', 1 + 3 * 2 ** -4)]).toBe(1.25);
    expect(FORMATS.float8e5m2.decode[enc('float8e5m2', 1 + 2 ** -3)]).toBe(1);
    expect(FORMATS.float8e5m2.decode[enc('float8e5m2', 1 + 3 * 2 ** -3)]).toBe(1.5);
    expect(FORMATS.float8e4m3fn.decode[enc('float8e4m3fn', 2 ** -10)]).toBe(0); // half the smallest subnormal
    expect(FORMATS.float8e4m3fn.decode[enc('float8e4m3fn', 3 * 2 ** -10)]).toBe(2 ** -8);
    const f4 = (x: number) => FORMATS.float4e2m1.decode[enc('float4e2m1', x)];
    expect([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5].map(f4)).toEqual([0, 1, 1, 2, 2, 4, 4]);
  });

  // The spec's tables, row by row: [x, E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ] as decoded values.
  const F8 = ['float8e4m3fn', 'float8e4m3fnuz', 'float8e5m2', 'float8e5m2fnuz'] as const;
  const decoded = (name: MiniName, x: number, sat: boolean) => FORMATS[name].decode[enc(name, x, sat)];
  it.each([
    [0, [0, 0, 0, 0]], [-0, [-0, 0, -0, 0]], [NaN, [NaN, NaN, NaN, NaN]],
    [Infinity, [448, 240, 57344, 57344]], [-Infinity, [-448, -240, -57344, -57344]],
    [1e6, [448, 240, 57344, 57344]], [-1e6, [-448, -240, -57344, -57344]],
  ])('saturate: %s', (x, want) => {
    F8.forEach((name, k) => expect(decoded(name, x, true)).toEqual(want[k]));
  });

  it.each([
    [0, [0, 0, 0, 0]], [-0, [-0, 0, -0, 0]], [NaN, [NaN, NaN, NaN, NaN]],
    [Infinity, [NaN, NaN, Infinity, NaN]], [-Infinity, [NaN, NaN, -Infinity, NaN]],
    [1e6, [NaN, NaN, Infinity, NaN]], [-1e6, [NaN, NaN, -Infinity, NaN]],
  ])('no saturate: %s', (x, want) => {
    F8.forEach((name, k) => expect(decoded(name, x, false)).toEqual(want[k]));
  });

  it('keeps the sign of -NaN and -Inf where the format has a signed NaN', () => {
    expect(enc('float8e4m3fn', -Infinity, false)).toBe(0xff);
    expect(enc('float8e4m3fn', negNaN, false)).toBe(0xff);
    expect(enc('float8e5m2', negNaN, false)).toBe(0xfe);
    expect(enc('float8e4m3fnuz', -Infinity, false)).toBe(0x80);
    expect(enc('float8e5m2', NaN)).toBe(0x7e); // quiet NaN, as truncating float32's NaN gives
  });

  it('rounds values just past the largest finite by the same tie rule', () => {
    // E4M3FN: 448 is 1.110b x 2^8 (even); the halfway point 464 stays finite, anything above is out of range.
    expect(decoded('float8e4m3fn', 464, false)).toBe(448);
    expect(decoded('float8e4m3fn', 464.5, false)).toBeNaN();
    // E5M2: 57344 is 1.11b x 2^15 (odd); the halfway point 61440 rounds to the even neighbour, infinity.
    expect(decoded('float8e5m2', 61439, false)).toBe(57344);
    expect(decoded('float8e5m2', 61440, false)).toBe(Infinity);
    expect(decoded('float8e4m3fnuz', 247, false)).toBe(240);
    expect(decoded('float8e4m3fnuz', 248, false)).toBeNaN();
  });

  it('float4e2m1 saturates (it has no infinity or NaN) and maps NaN to -0 as the reference does', () => {
    expect(enc('float4e2m1', 7)).toBe(0x7);
    expect(enc('float4e2m1', -Infinity)).toBe(0xf);
    expect(enc('float4e2m1', NaN)).toBe(0x8);
    expect(enc('float4e2m1', -0.1)).toBe(0x8);
  });
});

describe('float8e8m0', () => {
  const fmt = FORMATS.float8e8m0;
  const e8 = (x: number, sat = true, mode: 'up' | 'down' | 'nearest' = 'up') => encodeMini(fmt, x, sat, mode);

  it('holds powers of two 2^-127 .. 2^127 and NaN', () => {
    expect(fmt.decode[0]).toBe(2 ** -127);
    expect(fmt.decode[127]).toBe(1);
    expect(fmt.decode[254]).toBe(2 ** 127);
    expect(fmt.decode[255]).toBeNaN();
    for (let p = 0; p < 255; p++) for (const m of ['up', 'down', 'nearest'] as const) expect(e8(fmt.decode[p], false, m)).toBe(p);
  });

  it('rounds up, down or to nearest (ties up)', () => {
    expect([1.1, 1.5, 0.75, 3, 2].map((x) => e8(x, true, 'up'))).toEqual([128, 128, 127, 129, 128]);
    expect([1.1, 1.5, 0.75, 3, 2].map((x) => e8(x, true, 'down'))).toEqual([127, 127, 126, 128, 128]);
    expect([1.1, 1.5, 0.75, 3, 1.49].map((x) => e8(x, true, 'nearest'))).toEqual([127, 128, 127, 129, 127]);
  });

  it('follows the spec table for special values', () => {
    expect(e8(0, true, 'up')).toBe(0);
    expect(e8(0, false, 'nearest')).toBe(255);
    expect(e8(NaN)).toBe(255);
    expect(e8(Infinity, true)).toBe(254);
    expect(e8(Infinity, false, 'nearest')).toBe(255);
    expect(e8(2 ** 128, true)).toBe(254);
    expect(e8(2 ** 128, false, 'nearest')).toBe(255);
    expect(e8(2 ** -130, true)).toBe(0);
    expect(e8(2 ** -130, false, 'nearest')).toBe(255);
  });
});

describe('roundInPlace', () => {
  it('rounds float32 storage onto each narrow type\'s value set', () => {
    const a = Float32Array.of(1 + 2 ** -11, 1e6, -3.3);
    roundInPlace('float16', a);
    expect([...a]).toEqual([1, Infinity, f16ToNumber(numberToF16(-3.3))]);
    const b = Float32Array.of(460, 0.3, 500);
    roundInPlace('float8e4m3fn', b);
    expect([...b]).toEqual([448, 0.3125, NaN]);
  });

  it('leaves every value of each type as it is, infinities and NaN included', () => {
    for (const name of Object.keys(FORMATS) as MiniName[]) {
      const values = Float32Array.from(FORMATS[name].decode), before = [...values];
      roundInPlace(name, values);
      expect([...values], name).toEqual(before);
    }
  });
});

// The ONNX backend tests' Cast cases hold the reference's exact output bits: compare bit for bit.
const NODE_TESTS = join(import.meta.dirname, '../../shared/onnx-node-tests');
const CAST_TO: Record<string, MiniName | 'float16' | 'bfloat16'> = {
  FLOAT8E4M3FN: 'float8e4m3fn', FLOAT8E4M3FNUZ: 'float8e4m3fnuz', FLOAT8E5M2: 'float8e5m2', FLOAT8E5M2FNUZ: 'float8e5m2fnuz',
  FLOAT4E2M1: 'float4e2m1', FLOAT8E8M0: 'float8e8m0', FLOAT16: 'float16', BFLOAT16: 'bfloat16',
};
const castCases = existsSync(NODE_TESTS)
  ? readdirSync(NODE_TESTS).filter((d) => /^test_cast_(no_saturate_|e8m0_)?(FLOAT|FLOAT16|DOUBLE)_to_[A-Z0-9]+$/.test(d) && d.split('_to_')[1] in CAST_TO)
  : [];

describe.skipIf(castCases.length === 0)('bit-exact against the ONNX Cast test data', () => {
  it.each(castCases)('%s', (name) => {
    const dir = join(NODE_TESTS, name, 'test_data_set_0'), to = CAST_TO[name.split('_to_')[1]];
    const x = decodeValueFile(readFileSync(join(dir, 'input_0.pb')), 'tensor', 'input') as { data: ArrayLike<number> };
    const out = Msg.Tensor.decode(readFileSync(join(dir, 'output_0.pb'))) as unknown as { raw_data?: Uint8Array; int32_data: number[] };
    const n = x.data.length, raw = out.raw_data?.length ? out.raw_data : Uint8Array.from(out.int32_data);
    const bits = (i: number) => (to === 'float16' || to === 'bfloat16' ? raw[2 * i] | (raw[2 * i + 1] << 8)
      : to === 'float4e2m1' ? (raw[i >> 1] >> ((i & 1) * 4)) & 15 : raw[i]);
    const saturate = !name.includes('no_saturate');
    for (let i = 0; i < n; i++) {
      const v = x.data[i];
      const got = to === 'float16' ? numberToF16(v) : to === 'bfloat16' ? numberToBf16(v) : encodeMini(FORMATS[to], v, saturate);
      expect(got, `element ${i} (${v})`).toBe(bits(i));
    }
  });
});
