// RE2 patterns as JavaScript RegExps (with the u flag, so both match code points). The syntaxes mostly
// agree; where RE2 means something else the construct is rewritten (\s, ., octal escapes, \x{...},
// POSIX classes, \Q...\E, (?P<name>), multi-line anchors), and where JS has no equivalent (\C, mid-pattern
// flag groups, ungreedy mode) or RE2 has no such syntax (backreferences, lookaround) it throws.

const SYNTAX = new Set('^$\\.*+?()[]{}|/');
const CLASS_SYNTAX = new Set('^$\\.*+?()[]{}|/-');
const SPACE: Range[] = [[9, 10], [12, 13], [32, 32]]; // RE2's \s: [\t\n\f\r ], no \v
type Range = [number, number];

const POSIX: Record<string, Range[]> = {
  alnum: [[48, 57], [65, 90], [97, 122]], alpha: [[65, 90], [97, 122]], ascii: [[0, 127]], blank: [[9, 9], [32, 32]],
  cntrl: [[0, 31], [127, 127]], digit: [[48, 57]], graph: [[33, 126]], lower: [[97, 122]], print: [[32, 126]],
  punct: [[33, 47], [58, 64], [91, 96], [123, 126]], space: [[9, 13], [32, 32]], upper: [[65, 90]],
  word: [[48, 57], [65, 90], [95, 95], [97, 122]], xdigit: [[48, 57], [65, 70], [97, 102]],
};

const hex = (c: number) => `\\u{${c.toString(16)}}`;
const ranges = (rs: Range[]) => rs.map(([a, b]) => (a === b ? hex(a) : `${hex(a)}-${hex(b)}`)).join('');
/** The code points outside sorted, disjoint `rs`. */
function complement(rs: Range[]): Range[] {
  const out: Range[] = [];
  let next = 0;
  for (const [a, b] of rs) { if (a > next) out.push([next, a - 1]); next = b + 1; }
  if (next <= 0x10ffff) out.push([next, 0x10ffff]);
  return out;
}

export class Re2Error extends Error {}

/** A RegExp that matches exactly the strings RE2 would fully match with `pattern`. */
export function re2FullMatch(pattern: string): RegExp {
  const lead = /^\(\?(?=[^)])([imsU]*)(?:-[imsU]*)?\)/.exec(pattern);
  const flags = lead?.[1] ?? '';
  if (flags.includes('U')) throw new Re2Error('the ungreedy flag (?U) has no JavaScript equivalent');
  const body = new Translator(pattern.slice(lead?.[0].length ?? 0), flags.includes('s'), flags.includes('m')).run();
  try {
    return new RegExp(`^(?:${body})$`, flags.includes('i') ? 'ui' : 'u');
  } catch (e) {
    throw new Re2Error(`cannot be compiled: ${(e as Error).message}`);
  }
}

class Translator {
  private i = 0;
  private out = '';
  constructor(private readonly p: string, private readonly dotAll: boolean, private readonly multiLine: boolean) {}

  run(): string {
    const p = this.p;
    while (this.i < p.length) {
      const c = p[this.i++];
      if (c === '\\') this.out += this.escape(false);
      else if (c === '[') this.out += this.charClass();
      else if (c === '(') this.out += this.group();
      else if (c === '.') this.out += this.dotAll ? '[\\s\\S]' : '[^\\n]';
      // With (?m), RE2's ^ and $ match at \n only (JS's multiline mode also stops at \r and U+2028/9).
      else if (c === '^') this.out += this.multiLine ? '(?<![^\\n])' : '^';
      else if (c === '$') this.out += this.multiLine ? '(?![^\\n])' : '$';
      else if (c === '{') this.out += this.brace();
      else if (c === '}' || c === ']') this.out += '\\' + c; // RE2 reads a stray one as a literal; JS's u mode would not
      else this.out += c;
    }
    return this.out;
  }

  private fail(what: string): never { throw new Re2Error(`${what} at offset ${this.i} of /${this.p}/`); }

  /** A repetition {n}, {n,} or {n,m} passes through; any other brace is a literal in RE2. */
  private brace(): string {
    const m = /^\d+(,\d*)?\}/.exec(this.p.slice(this.i));
    if (!m) return '\\{';
    this.i += m[0].length;
    return '{' + m[0];
  }

  private group(): string {
    const rest = this.p.slice(this.i);
    if (!rest.startsWith('?')) return '(';
    const named = /^\?P?<([A-Za-z_]\w*)>/.exec(rest);
    if (named) { this.i += named[0].length; return `(?<${named[1]}>`; }
    if (rest.startsWith('?:')) { this.i += 2; return '(?:'; }
    if (/^\?<?[=!]/.test(rest)) this.fail('lookaround is not RE2 syntax');
    if (/^\?[imsU-]+[:)]/.test(rest)) this.fail('flag groups other than one leading (?flags) have no JavaScript equivalent');
    return this.fail('unknown group syntax');
  }

  /** The escape after a backslash; inside a class it must yield class contents, not a bracketed class. */
  private escape(inClass: boolean): string {
    const p = this.p, e = p[this.i++];
    if (e === undefined) this.fail('trailing backslash');
    if (/[0-7]/.test(e)) {
      // \0 starts an octal code; \1-\7 only when more digits follow (alone, RE2 reads a backreference).
      const m = /^[0-7]{1,2}/.exec(p.slice(this.i));
      if (e !== '0' && !m) this.fail('backreferences are not RE2 syntax');
      this.i += m?.[0].length ?? 0;
      return hex(parseInt(e + (m?.[0] ?? ''), 8));
    }
    switch (e) {
      case 'x': {
        const m = /^(?:\{([0-9A-Fa-f]{1,6})\}|([0-9A-Fa-f]{2}))/.exec(p.slice(this.i)) ?? this.fail('bad \\x escape');
        this.i += m[0].length;
        return hex(parseInt(m[1] ?? m[2], 16));
      }
      case 'a': return hex(7);
      case 'f': case 't': case 'n': case 'r': case 'v': case 'd': case 'D': case 'w': case 'W': return '\\' + e;
      case 'b': case 'B': return inClass ? this.fail('\\b inside a class is not RE2 syntax') : '\\' + e;
      case 's': return inClass ? ranges(SPACE) : `[${ranges(SPACE)}]`;
      case 'S': return inClass ? ranges(complement(SPACE)) : `[^${ranges(SPACE)}]`;
      case 'p': case 'P': return this.unicodeClass(e === 'P');
      case 'A': case 'z': return inClass ? this.fail(`\\${e} inside a class`) : e === 'A' ? '^' : '$';
      case 'Q': {
        if (inClass) this.fail('\\Q inside a class');
        const end = p.indexOf('\\E', this.i), lit = p.slice(this.i, end < 0 ? p.length : end);
        this.i = end < 0 ? p.length : end + 2;
        return [...lit].map((ch) => (SYNTAX.has(ch) ? '\\' + ch : ch)).join('');
      }
      case 'C': return this.fail('\\C (any byte) has no JavaScript equivalent');
    }
    if (/[\p{L}\p{N}_]/u.test(e)) this.fail(`\\${e} is not RE2 syntax`);
    return (inClass ? CLASS_SYNTAX : SYNTAX).has(e) ? '\\' + e : hex(e.codePointAt(0)!);
  }

  /** \pL, \p{Greek}, \p{^Greek}, \PL: general categories keep their name, anything else is a script. */
  private unicodeClass(negated: boolean): string {
    const m = /^(?:\{(\^?)(\w+)\}|([A-Za-z]))/.exec(this.p.slice(this.i)) ?? this.fail('bad \\p escape');
    this.i += m[0].length;
    const name = m[2] ?? m[3], neg = negated !== (m[1] === '^');
    const prop = name === 'Any' || /^[A-Z][a-z]?$/.test(name) ? name : `Script=${name}`;
    return `\\${neg ? 'P' : 'p'}{${prop}}`;
  }

  private charClass(): string {
    const p = this.p;
    let s = '[';
    if (p[this.i] === '^') { s += '^'; this.i++; }
    if (p[this.i] === ']') { s += '\\]'; this.i++; } // a leading ] is a literal in RE2; JS reads [] as empty
    for (;;) {
      const c = p[this.i++];
      if (c === undefined) this.fail('missing ]');
      if (c === ']') return s + ']';
      const posix = c === '[' ? /^:(\^?)([a-z]+):\]/.exec(p.slice(this.i)) : null;
      if (posix) {
        const rs = POSIX[posix[2]] ?? this.fail(`unknown POSIX class [:${posix[2]}:]`);
        this.i += posix[0].length;
        s += ranges(posix[1] ? complement(rs) : rs);
      } else if (c === '\\') s += this.escape(true);
      else s += c === '[' ? '\\[' : c;
    }
  }
}
