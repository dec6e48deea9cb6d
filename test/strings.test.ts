import { describe, expect, it } from 'vitest';
import { floats, GraphBuilder, type AttrInput } from '../loaders/builder.js';
import type { DType } from '../engine/dtype.js';
import { NdArray } from '../engine/tensor.js';
import { InferenceSession, Tensor } from '../index.js';
import { re2FullMatch } from '../kernels/cpu/re2.js';
import { expectMatchesOrt, rng } from './helpers/oracle.js';

type In = [string, DType, number[]];

function model(op: string, ins: In[], attrs: Record<string, AttrInput>, opset: number, outs = 1) {
  const g = new GraphBuilder();
  for (const o of g.node(op, ins.map(([n, d, s]) => g.input(n, d, s)), attrs, outs)) g.output(o, null);
  return g.model({ opset });
}

const str = (xs: string[], shape = [xs.length]) => new NdArray('string', shape, xs);

async function ours(bytes: Uint8Array, feeds: Record<string, NdArray>) {
  const s = await InferenceSession.create(bytes);
  const out = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor(v.dtype, v.data, v.shape)])));
  return Object.values(out) as Tensor[];
}

describe('StringNormalizer', () => {
  // onnxruntime needs the system's en_US.UTF-8 locale for this op, which test machines often lack: expected values by hand.
  const run = async (xs: string[], shape: number[], attrs: Record<string, AttrInput>) => {
    const [y] = await ours(model('StringNormalizer', [['x', 'string', shape]], attrs, 10), { x: str(xs, shape) });
    return { dims: y.dims, data: y.data };
  };

  it('drops stop words case-insensitively by default, then changes case one character at a time', async () => {
    expect(await run(['Straße', 'Ça', 'éß', 'MONDAY', 'Σς'], [5], { case_change_action: 'UPPER', stopwords: ['monday'] }))
      .toEqual({ dims: [4], data: ['STRAßE', 'ÇA', 'Éß', 'ΣΣ'] }); // ß has no one-character upper case: kept
    expect(await run(['A', 'a', 'İI', 'ΣΑΣ'], [1, 4], { case_change_action: 'LOWER', is_case_sensitive: 1, stopwords: ['A'] }))
      .toEqual({ dims: [1, 3], data: ['a', 'İi', 'σασ'] });
  });

  it('keeps the rank when every word is dropped, and passes through with no stop words', async () => {
    expect(await run(['x', 'X'], [1, 2], { stopwords: ['x'] })).toEqual({ dims: [1, 1], data: [''] });
    expect(await run([], [0], {})).toEqual({ dims: [1], data: [''] });
    expect(await run(['Ab', 'cD'], [2], { is_case_sensitive: 1 })).toEqual({ dims: [2], data: ['Ab', 'cD'] });
  });

  it('rejects bad shapes, actions and locales', async () => {
    await expect(run(['a', 'b'], [2, 1], {})).rejects.toThrow(/should be \[C\] or \[1, C\], got shape \[2,1\]/);
    await expect(run(['a'], [1], { case_change_action: 'TITLE' })).rejects.toThrow(/case_change_action should be LOWER, UPPER or NONE/);
    await expect(run(['a'], [1], { locale: 'not a locale!' })).rejects.toThrow(/locale 'not a locale!' is not a valid locale name/);
    expect(await run(['i'], [1], { case_change_action: 'UPPER', locale: 'tr_TR.UTF-8' })).toEqual({ dims: [1], data: ['İ'] });
  });
});

describe('StringSplit', () => {
  const words = ['  a b  c  ', '', 'x', 'a--b-', 'one two three four', '-', 'a b'];

  it('matches onnxruntime with and without a delimiter and maxsplit', async () => {
    const x = str(words, [7]);
    for (const attrs of [{}, { maxsplit: 1 }, { maxsplit: 0 }, { delimiter: '-' }, { delimiter: '-', maxsplit: 1 }, { delimiter: '--' }, { delimiter: ' ', maxsplit: 2 }]) {
      await expectMatchesOrt(model('StringSplit', [['x', 'string', [7]]], attrs, 20, 2), { x });
    }
    const m = str(['p q', 'r', 's t u', ''], [2, 2]);
    await expectMatchesOrt(model('StringSplit', [['x', 'string', [2, 2]]], {}, 20, 2), { x: m });
    await expectMatchesOrt(model('StringSplit', [['x', 'string', [0]]], { delimiter: ',' }, 20, 2), { x: str([]) });
  });

  it('splits on any whitespace, as the ONNX reference (str.split) does, trimming both ends', async () => {
    const [y, z] = await ours(model('StringSplit', [['x', 'string', [2]]], { maxsplit: 1 }, 20, 2), { x: str(['\ta\u00a0b c\n', '\u3000x\r\ny \x0b']) });
    expect(y.dims).toEqual([2, 2]);
    expect(y.data).toEqual(['a', 'b c', 'x', 'y']);
    expect([...(z.data as BigInt64Array)]).toEqual([2n, 2n]);
  });
});

describe('StringConcat', () => {
  it('matches onnxruntime with broadcasting, empty and non-ASCII strings', async () => {
    const cases: [string[], number[], string[], number[]][] = [
      [['abc', 'def'], [2], ['.com', '.net'], [2]],
      [['a', 'b', 'c'], [3, 1], ['x', 'y'], [1, 2]],
      [['cat'], [], ['s', '', '的'], [3]],
      [[], [0, 2], ['z'], [1]],
    ];
    for (const [a, as, b, bs] of cases) {
      await expectMatchesOrt(model('StringConcat', [['a', 'string', as], ['b', 'string', bs]], {}, 20), { a: str(a, as), b: str(b, bs) });
    }
  });

  it('names the shapes that do not broadcast', async () => {
    await expect(ours(model('StringConcat', [['a', 'string', [2]], ['b', 'string', [3]]], {}, 20), { a: str(['a', 'b']), b: str(['c', 'd', 'e']) }))
      .rejects.toThrow(/input shapes \[2\] and \[3\] do not broadcast/);
  });
});

describe('RegexFullMatch', () => {
  const subjects = ['abc', 'ABC', 'a\nb', 'a\rb', '😀', 'x y', 'a\tb', 'a\vb', '\x07', '{', '}', ']', '-', 'aé', 'Σ', '12', 'a{,2}', '',
    'ab\n', 'a\u2028b', 'ſ', 'k', 'K', 'www.google.com', 'x@gmail.com', '\n', 'a.c', 'AbC'];
  // RE2 constructs whose JS spelling differs (or whose meaning does): each checked against onnxruntime's RE2.
  const patterns = ['a.c', '(?i)abc', '(?s)a.b', 'a.b', '.', 'x\\sy', 'a\\sb', 'a\\Sb', '\\a', '\\{', '{', '}', ']', '[]a]', '[^]a]+', '\\-',
    '[[:alpha:]]+', '[[:^alpha:]]+', '[[:punct:][:digit:]]+', '\\pL+', '\\p{Greek}', '\\PL', '\\p{^Greek}', '\\x{1F600}', '\\x41BC', '\\101BC',
    '\\QA.C\\E', '\\Qa.c', '(?P<n>ab)c', '(?<m>a)bc', '\\d+', 'a{,2}', 'a{1,}b?c{0}', '(?m)ab$\\n?', '(?m)^ab\\n$', 'ab\\z', '\\Aab\\n',
    '[\\s]', '[\\S]+', '\\w+', '(?i)\\w', '(?i)k', '(?i)[a-z]+', '\\p{Lu}', '(a|ab)(c|bcd)?', '\\b', '\\012', '\\0', '[\\x{41}-\\x{43}]+',
    '(?i-s)a.c', 'www\\.[\\w.-]+\\.\\bcom\\b', '(\\W|^)[\\w.\\-]{0,25}@(yahoo|gmail)\\.com(\\W|$)', 'a\\@\\#\\ c', '[\\^\\]\\-]+', '\\n?'];

  it('agrees with onnxruntime (RE2) on a table of patterns and subjects', async () => {
    const x = str(subjects);
    for (const pattern of patterns) await expectMatchesOrt(model('RegexFullMatch', [['x', 'string', [subjects.length]]], { pattern }, 20), { x });
    await expectMatchesOrt(model('RegexFullMatch', [['x', 'string', [2, 0]]], { pattern: 'a' }, 20), { x: str([], [2, 0]) });
  });

  it('refuses constructs RE2 lacks or JavaScript cannot express, naming them', () => {
    const cases: [string, RegExp][] = [
      ['(a)\\1', /backreferences are not RE2 syntax/], ['a(?=b)', /lookaround is not RE2 syntax/], ['(?<!a)b', /lookaround/],
      ['a(?i)b', /flag groups other than one leading/], ['(?i:a)b', /flag groups/], ['(?U)a+', /ungreedy/],
      ['\\C', /\\C \(any byte\)/], ['\\e', /\\e is not RE2 syntax/], ['[[:foo:]]', /unknown POSIX class/], ['[ab', /missing \]/],
      ['a**', /cannot be compiled/], ['\\x{zz}', /bad \\x escape/],
    ];
    for (const [p, msg] of cases) expect(() => re2FullMatch(p), p).toThrow(msg);
  });

  it('reports a bad pattern when the session is created', async () => {
    await expect(ours(model('RegexFullMatch', [['x', 'string', [1]]], { pattern: '(a)\\1' }, 20), { x: str(['aa']) }))
      .rejects.toThrow(/RegexFullMatch.*pattern \/\(a\)\\1\/: backreferences/);
  });
});

describe('TfIdfVectorizer', () => {
  it('matches onnxruntime over random pools, n-gram ranges, skips, modes and token types', async () => {
    const r = rng(7);
    for (let t = 0; t < 40; t++) {
      const maxN = r.int(1, 3), minN = r.int(1, maxN), skips = r.int(0, 3), mode = r.pick(['TF', 'IDF', 'TFIDF']);
      const counts: number[] = [], pool: number[] = [];
      for (let n = 1; n <= maxN; n++) {
        counts.push(pool.length);
        const seen = new Set<string>();
        for (let g = r.int(n === 1 ? 1 : 0, 4); g > 0; g--) {
          const gram = Array.from({ length: n }, () => r.int(0, 4));
          if (!seen.has(String(gram))) { seen.add(String(gram)); pool.push(...gram); }
        }
      }
      const grams = counts.reduce((s, c, k) => s + ((counts[k + 1] ?? pool.length) - c) / (k + 1), 0);
      const indexes = Array.from({ length: grams }, (_, i) => i).sort(() => r.next() - 0.5);
      const dtype = r.pick<DType>(['int32', 'int64', 'string']), shape = r.next() < 0.5 ? [r.int(1, 10)] : [r.int(1, 3), r.int(1, 8)];
      const size = shape.reduce((a, b) => a * b, 1), vals = Array.from({ length: size }, () => r.int(0, 4));
      const x = dtype === 'string' ? str(vals.map((v) => `w${v}`), shape)
        : new NdArray(dtype, shape, dtype === 'int64' ? BigInt64Array.from(vals, BigInt) : Int32Array.from(vals));
      const attrs: Record<string, AttrInput> = {
        mode, min_gram_length: minN, max_gram_length: maxN, max_skip_count: skips, ngram_counts: counts, ngram_indexes: indexes,
        ...(dtype === 'string' ? { pool_strings: pool.map((v) => `w${v}`) } : { pool_int64s: pool }),
        ...(r.next() < 0.5 ? { weights: floats(indexes.map(() => r.float(0.5, 2))) } : {}),
      };
      await expectMatchesOrt(model('TfIdfVectorizer', [['x', dtype, shape]], attrs, 9), { x });
    }
  });

  it('rejects a pool that does not split into whole n-grams or repeats one, and a token type the pool does not hold', async () => {
    const base = { mode: 'TF', min_gram_length: 1, max_gram_length: 2, max_skip_count: 0, ngram_indexes: [0, 1, 2] };
    const x = new NdArray('int32', [3], Int32Array.of(1, 2, 3));
    await expect(ours(model('TfIdfVectorizer', [['x', 'int32', [3]]], { ...base, ngram_counts: [0, 2], pool_int64s: [1, 2, 3] }, 9), { x }))
      .rejects.toThrow(/ngram_counts \[0,2\] do not split the pool of 3 into whole 2-grams/);
    await expect(ours(model('TfIdfVectorizer', [['x', 'int32', [3]]], { ...base, ngram_counts: [0, 3], pool_strings: ['a', 'b', 'c'] }, 9), { x }))
      .rejects.toThrow(/input 0 has dtype int32; expected string \(pool_strings is set\)/);
    await expect(ours(model('TfIdfVectorizer', [['x', 'int32', [3]]], { ...base, ngram_counts: [0, 1], pool_int64s: [1, 2, 3, 2, 3] }, 9), { x }))
      .rejects.toThrow(/the pool holds the 2-gram \[2,3\] twice/);
  });
});
