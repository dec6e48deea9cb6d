// String ops: StringNormalizer, StringSplit, StringConcat, RegexFullMatch and TfIdfVectorizer (n-gram
// counts over string or integer tokens). Strings are JS strings, so lengths and matching are in code points
// where it matters (case mapping, regexes) and UTF-16 units elsewhere.
import { NdArray, type Value } from '../engine/tensor.js';
import { binaryBroadcast, broadcastShapes } from '../kernels/cpu/broadcast.js';
import { Re2Error, re2FullMatch } from '../kernels/cpu/re2.js';
import { type Attrs, fail, register, tensorAt, type RunCtx } from './registry.js';
import { broadcastInfer, shapeOf, tensorType } from './infer-rules.js';

type Ins = (Value | undefined)[];

function stringsAt(ins: Ins, i: number, ctx: RunCtx): NdArray {
  const x = tensorAt(ins, i, ctx);
  if (x.dtype !== 'string') fail(ctx, `input ${i} ('${ctx.node.inputs[i] ?? ''}') has dtype ${x.dtype}; expected string`);
  return x;
}

// ---- StringNormalizer ----

interface NormAttrs { action: 'LOWER' | 'UPPER' | 'NONE'; caseSensitive: boolean; stopwords: Set<string>; locale: string }

function normAttrs(a: Attrs): NormAttrs {
  const action = a.string('case_change_action', 'NONE');
  if (action !== 'LOWER' && action !== 'UPPER' && action !== 'NONE') throw a.error(`case_change_action should be LOWER, UPPER or NONE, got '${action}'`);
  // POSIX names (en_US.UTF-8) become BCP 47 tags (en-US) for Intl.
  const raw = a.string('locale', 'en_US'), locale = raw.replace(/[.@].*$/, '').replace(/_/g, '-');
  try { Intl.getCanonicalLocales(locale); } catch { throw a.error(`locale '${raw}' is not a valid locale name`); }
  const caseSensitive = a.int('is_case_sensitive', 0) !== 0, words = a.strings('stopwords', []);
  return { action, caseSensitive, locale, stopwords: new Set(caseSensitive ? words : words.map((w) => w.toLocaleLowerCase(locale))) };
}

/**
 * Case mapping one code point at a time, keeping a character whose mapping is not a single code point
 * (ß -> SS, İ -> i̇): the reference implementations map wide characters one to one.
 */
function mapCase(s: string, upper: boolean, locale: string): string {
  let out = '';
  for (const ch of s) {
    const m = upper ? ch.toLocaleUpperCase(locale) : ch.toLocaleLowerCase(locale);
    out += [...m].length === 1 ? m : ch;
  }
  return out;
}

register({
  op: 'StringNormalizer', since: 10,
  attrs: normAttrs,
  infer: (ins) => [tensorType('string', shapeOf(ins[0])?.length === 2 ? [1, null] : [null])],
  run: (ins, a, ctx) => {
    const x = stringsAt(ins, 0, ctx), s = x.shape;
    if (!(s.length === 1 || (s.length === 2 && s[0] === 1))) fail(ctx, `input 0 should be [C] or [1, C], got shape [${s}]`);
    const words = x.data as string[];
    const kept = a.stopwords.size ? words.filter((w) => !a.stopwords.has(a.caseSensitive ? w : w.toLocaleLowerCase(a.locale))) : words;
    const out = a.action === 'NONE' ? kept.slice() : kept.map((w) => mapCase(w, a.action === 'UPPER', a.locale));
    // Everything dropped: one empty string, keeping the input's rank.
    if (!out.length) out.push('');
    return [new NdArray('string', s.length === 1 ? [out.length] : [1, out.length], out)];
  },
});

// ---- StringSplit ----

// The whitespace of Python's str.split(), which the ONNX reference follows (onnxruntime splits on ' ' only).
const WS = '[\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const WS_RUN = new RegExp(`${WS}+`, 'g'), WS_ENDS = new RegExp(`^${WS}+|${WS}+$`, 'g');

/**
 * At most `max` splits, the rest of the string as the last part. An empty string has no parts (as in
 * onnxruntime). Without a delimiter, runs of whitespace separate and whitespace at either end is dropped,
 * including at the end of that last part (as the operator's description and onnxruntime have it).
 */
function split(s: string, delim: string, max: number): string[] {
  if (!delim) s = s.replace(WS_ENDS, '');
  const out: string[] = [];
  if (!s) return out;
  let i = 0;
  while (out.length < max) {
    let at: number, len: number;
    if (delim) { at = s.indexOf(delim, i); len = delim.length; } else {
      WS_RUN.lastIndex = i;
      const m = WS_RUN.exec(s);
      [at, len] = m ? [m.index, m[0].length] : [-1, 0];
    }
    if (at < 0) break;
    out.push(s.slice(i, at));
    i = at + len;
  }
  out.push(s.slice(i));
  return out;
}

register({
  op: 'StringSplit', since: 20,
  attrs: (a) => {
    const max = a.has('maxsplit') ? a.int('maxsplit') : Infinity;
    if (max < 0) throw a.error(`maxsplit should be >= 0, got ${max}`);
    return { delim: a.string('delimiter', ''), max };
  },
  infer: (ins) => {
    const s = shapeOf(ins[0]);
    return [tensorType('string', s && [...s, null]), tensorType('int64', s)];
  },
  run: (ins, a, ctx) => {
    const x = stringsAt(ins, 0, ctx);
    const parts = (x.data as string[]).map((s) => split(s, a.delim, a.max));
    const width = parts.reduce((m, p) => Math.max(m, p.length), 0);
    const y = NdArray.zeros('string', [...x.shape, width]), z = NdArray.zeros('int64', x.shape);
    parts.forEach((p, i) => {
      (z.data as BigInt64Array)[i] = BigInt(p.length);
      p.forEach((s, j) => { (y.data as string[])[i * width + j] = s; });
    });
    return [y, z];
  },
});

// ---- StringConcat / RegexFullMatch ----

register({
  op: 'StringConcat', since: 20,
  infer: broadcastInfer('string'),
  run: (ins, _a, ctx) => {
    const x = stringsAt(ins, 0, ctx), y = stringsAt(ins, 1, ctx);
    const shape = broadcastShapes(x.shape, y.shape) ?? fail(ctx, `input shapes [${x.shape}] and [${y.shape}] do not broadcast`);
    const out = NdArray.zeros('string', shape);
    binaryBroadcast(x.data, x.shape, y.data, y.shape, shape, out.data, (p: string, q: string) => p + q);
    return [out];
  },
});

register({
  op: 'RegexFullMatch', since: 20,
  attrs: (a) => {
    const p = a.string('pattern');
    try { return re2FullMatch(p); } catch (e) {
      if (e instanceof Re2Error) throw a.error(`pattern /${p}/: ${e.message}`);
      throw e;
    }
  },
  infer: (ins) => [tensorType('bool', shapeOf(ins[0]))],
  run: (ins, re, ctx) => {
    const x = stringsAt(ins, 0, ctx);
    return [new NdArray('bool', x.shape, Uint8Array.from(x.data as string[], (s) => (re.test(s) ? 1 : 0)))];
  },
});

// ---- TfIdfVectorizer ----

/** A trie over tokens: the node reached by an n-gram's tokens holds that n-gram's index in the pool. */
interface Trie { next: Map<string | number, Trie>; id: number }
const trieNode = (): Trie => ({ next: new Map(), id: -1 });

interface TfIdfAttrs {
  mode: 'TF' | 'IDF' | 'TFIDF'; minN: number; maxN: number; skips: number;
  strings: boolean; root: Trie; indexes: number[]; weights: number[]; width: number;
}

function tfidfAttrs(a: Attrs): TfIdfAttrs {
  const mode = a.string('mode');
  if (mode !== 'TF' && mode !== 'IDF' && mode !== 'TFIDF') throw a.error(`mode should be TF, IDF or TFIDF, got '${mode}'`);
  const minN = a.int('min_gram_length'), maxN = a.int('max_gram_length'), skips = a.int('max_skip_count');
  if (!(minN >= 1 && minN <= maxN) || skips < 0) throw a.error(`needs 1 <= min_gram_length (${minN}) <= max_gram_length (${maxN}) and max_skip_count (${skips}) >= 0`);
  if (a.has('pool_strings') === a.has('pool_int64s')) throw a.error('needs exactly one of pool_strings and pool_int64s');
  const strings = a.has('pool_strings'), pool: (string | number)[] = strings ? a.strings('pool_strings') : a.ints('pool_int64s');
  const counts = a.ints('ngram_counts'), indexes = a.ints('ngram_indexes'), root = trieNode();
  let id = 0;
  counts.forEach((start, k) => {
    const n = k + 1, end = counts[k + 1] ?? pool.length;
    if (start > end || end > pool.length || (end - start) % n) throw a.error(`ngram_counts [${counts}] do not split the pool of ${pool.length} into whole ${n}-grams`);
    for (let g = start; g < end; g += n, id++) {
      let node = root;
      for (const t of pool.slice(g, g + n)) node = node.next.get(t) ?? (node.next.set(t, trieNode()).get(t) as Trie);
      if (node.id >= 0) throw a.error(`the pool holds the ${n}-gram [${pool.slice(g, g + n)}] twice`);
      node.id = id;
    }
  });
  if (indexes.length !== id || indexes.some((i) => i < 0)) throw a.error(`ngram_indexes should hold ${id} non-negative entries (one per pool n-gram), got ${indexes.length}`);
  const weights = a.floats('weights', new Array<number>(id).fill(1));
  if (weights.length !== id) throw a.error(`weights should hold ${id} entries (one per pool n-gram), got ${weights.length}`);
  return { mode, minN, maxN, skips, strings, root, indexes, weights, width: indexes.reduce((m, i) => Math.max(m, i + 1), 0) };
}

/**
 * Adds the occurrences of each pool n-gram in tokens[from, to) to `counts`, over every skip 0..skips
 * (1-grams count once), and returns the ids it touched, so that large vocabularies cost nothing per row.
 */
function countNgrams(tokens: ArrayLike<string | number>, from: number, to: number, a: TfIdfAttrs, counts: Float64Array): number[] {
  const touched: number[] = [];
  for (let i = from; i < to; i++) {
    for (let s = 0; s <= a.skips; s++) {
      let node: Trie | undefined = a.root;
      for (let g = 1, j = i; g <= a.maxN && j < to; g++, j += s + 1) {
        node = node.next.get(tokens[j]);
        if (!node) break;
        if (g >= a.minN && node.id >= 0 && (g > 1 || s === 0) && counts[node.id]++ === 0) touched.push(node.id);
      }
    }
  }
  return touched;
}

register({
  op: 'TfIdfVectorizer', since: 9,
  attrs: tfidfAttrs,
  infer: (ins, a) => {
    const s = shapeOf(ins[0]);
    return [tensorType('float32', s && (s.length === 2 ? [s[0], a.width] : [a.width]))];
  },
  run: (ins, a, ctx) => {
    const x = tensorAt(ins, 0, ctx), r = x.shape.length;
    const ok = a.strings ? x.dtype === 'string' : x.dtype === 'int32' || x.dtype === 'int64';
    if (!ok) fail(ctx, `input 0 has dtype ${x.dtype}; expected ${a.strings ? 'string (pool_strings is set)' : 'int32 or int64 (pool_int64s is set)'}`);
    if (r !== 1 && r !== 2) fail(ctx, `input 0 should be [C] or [N, C], got shape [${x.shape}]`);
    const [rows, cols] = r === 1 ? [1, x.shape[0]] : x.shape;
    const out = NdArray.zeros('float32', r === 1 ? [a.width] : [rows, a.width]), o = out.data as Float32Array;
    const tokens: (string | number)[] = a.strings ? (x.data as string[]) : x.numbers(), counts = new Float64Array(a.indexes.length);
    for (let row = 0; row < rows; row++) {
      for (const id of countNgrams(tokens, row * cols, (row + 1) * cols, a, counts)) {
        const c = counts[id];
        o[row * a.width + a.indexes[id]] = a.mode === 'TF' ? c : a.mode === 'IDF' ? a.weights[id] : c * a.weights[id];
        counts[id] = 0;
      }
    }
    return [out];
  },
});
