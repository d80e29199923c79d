/**
 * A JSON Schema `pattern` as GBNF for the inside of a JSON string: the regex is parsed
 * into a tree and each node written as grammar, every character in the form JSON needs
 * it (`"` as `\"`, a newline as `\n`, ...), so the string decodes to a match. Pure.
 *
 * Supported, as in llama.cpp's json-schema-to-grammar and OpenAI's documented subset:
 * literals and escapes (`\d \w \s \D \W \S`, `\t \n \r \f \v`, `\xHH`, `\uHHHH`, escaped
 * punctuation), `.`, classes (ranges, negation), groups (capturing, `(?:)`, named),
 * `|`, `* + ? {n} {n,} {n,m}` (lazy forms too: same language), and `^`/`$` at the ends.
 * A pattern without anchors matches anywhere in a string; writing only the match satisfies
 * it. Lookaround, backreferences, `\b` and Unicode property classes have no grammar:
 * PatternError names them.
 */

export class PatternError extends Error {}

type Node =
  | {readonly kind: "chars"; readonly ranges: readonly Range[]; readonly negated: boolean}
  | {readonly kind: "seq"; readonly items: readonly Node[]}
  | {readonly kind: "alt"; readonly options: readonly Node[]}
  | {readonly kind: "repeat"; readonly item: Node; readonly min: number; readonly max: number | undefined};

type Range = readonly [from: number, to: number];

/** Repetition bounds above this would make llama.cpp expand very large grammars. */
const MAX_REPEAT = 1000;

/** GBNF for the characters of a JSON string (without its quotes) that match the pattern. */
export function patternGrammar(pattern: string): string {
  return emit(new Parser(pattern).parse());
}

class Parser {
  #at = 0;

  constructor(private readonly src: string) {}

  parse(): Node {
    const node = this.#alternation(true);
    if (this.#at < this.src.length) throw new PatternError(`unbalanced ')' at ${this.#at}`);
    return node;
  }

  #alternation(top: boolean): Node {
    const options = [this.#sequence(top)];
    while (this.src[this.#at] === "|") {
      this.#at++;
      options.push(this.#sequence(top));
    }
    return options.length === 1 ? options[0]! : {kind: "alt", options};
  }

  #sequence(top: boolean): Node {
    const items: Node[] = [];
    if (top && this.src[this.#at] === "^") this.#at++;
    while (this.#at < this.src.length && this.src[this.#at] !== "|" && this.src[this.#at] !== ")") {
      if (top && this.src[this.#at] === "$" && (this.#at + 1 === this.src.length || this.src[this.#at + 1] === "|")) {
        this.#at++;
        break;
      }
      items.push(this.#quantified(this.#atom()));
    }
    return items.length === 1 ? items[0]! : {kind: "seq", items};
  }

  #quantified(item: Node): Node {
    const c = this.src[this.#at];
    let min: number;
    let max: number | undefined;
    if (c === "*" || c === "+" || c === "?") {
      this.#at++;
      [min, max] = c === "*" ? [0, undefined] : c === "+" ? [1, undefined] : [0, 1];
    } else if (c === "{" && /^\{\d+(,\d*)?\}/.test(this.src.slice(this.#at))) {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.#at))!;
      this.#at += m[0].length;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === "" ? undefined : Number(m[3]);
      if (max !== undefined && max < min) throw new PatternError(`{${min},${max}}: the maximum is below the minimum`);
      if (Math.max(min, max ?? 0) > MAX_REPEAT) throw new PatternError(`repetition above ${MAX_REPEAT}`);
    } else return item;
    if (this.src[this.#at] === "?") this.#at++; // lazy: the same strings
    const after = this.src[this.#at];
    if (after === "*" || after === "+" || after === "?") throw new PatternError("possessive or doubled quantifiers are not supported");
    return {kind: "repeat", item, min, max};
  }

  #atom(): Node {
    const c = this.src[this.#at]!;
    this.#at++;
    switch (c) {
      case "(":
        return this.#group();
      case "[":
        return this.#class();
      case ".":
        return {kind: "chars", ranges: [[0x0a, 0x0a], [0x0d, 0x0d]], negated: true};
      case "\\":
        return this.#escape(false);
      case "^":
      case "$":
        throw new PatternError(`'${c}' inside the pattern (only at its start or end)`);
      case "*":
      case "+":
      case "?":
        throw new PatternError(`'${c}' with nothing to repeat`);
      default: {
        const code = this.src.codePointAt(this.#at - 1)!;
        if (code > 0xffff) this.#at++;
        return {kind: "chars", ranges: [[code, code]], negated: false};
      }
    }
  }

  #group(): Node {
    if (this.src[this.#at] === "?") {
      const named = /^\?<[A-Za-z_][A-Za-z0-9_]*>/.exec(this.src.slice(this.#at));
      if (this.src.startsWith("?:", this.#at)) this.#at += 2;
      else if (named) this.#at += named[0].length;
      else throw new PatternError("lookaround and inline flags are not supported");
    }
    const node = this.#alternation(false);
    if (this.src[this.#at] !== ")") throw new PatternError("unterminated group");
    this.#at++;
    return node;
  }

  #class(): Node {
    const negated = this.src[this.#at] === "^";
    if (negated) this.#at++;
    const ranges: Range[] = [];
    let first = true;
    while (this.src[this.#at] !== "]" || first) {
      if (this.#at >= this.src.length) throw new PatternError("unterminated character class");
      first = false;
      const from = this.#classMember();
      if (this.src[this.#at] === "-" && this.src[this.#at + 1] !== "]" && this.#at + 1 < this.src.length && from.length === 1 && from[0]![0] === from[0]![1]) {
        this.#at++;
        const to = this.#classMember();
        if (to.length !== 1 || to[0]![0] !== to[0]![1]) throw new PatternError("a range must end at a single character");
        if (to[0]![0] < from[0]![0]) throw new PatternError("a range runs backwards");
        ranges.push([from[0]![0], to[0]![0]]);
      } else ranges.push(...from);
    }
    this.#at++;
    return {kind: "chars", ranges, negated};
  }

  /** One member of a class: a character, or the ranges of an escape like \d. */
  #classMember(): Range[] {
    if (this.src[this.#at] === "\\") {
      this.#at++;
      const node = this.#escape(true);
      if (node.kind !== "chars") throw new PatternError("unsupported escape in a class");
      if (node.negated) throw new PatternError("\\D, \\W or \\S inside a class is not supported");
      return [...node.ranges];
    }
    const code = this.src.codePointAt(this.#at)!;
    this.#at += code > 0xffff ? 2 : 1;
    return [[code, code]];
  }

  /** After a backslash. */
  #escape(inClass: boolean): Node {
    const c = this.src[this.#at];
    if (c === undefined) throw new PatternError("trailing backslash");
    this.#at++;
    const one = (code: number): Node => ({kind: "chars", ranges: [[code, code]], negated: false});
    const shorthand = CLASSES[c.toLowerCase()];
    if (shorthand) return {kind: "chars", ranges: shorthand, negated: c !== c.toLowerCase()};
    const control: Record<string, number> = {t: 9, n: 10, v: 11, f: 12, r: 13, "0": 0};
    if (c in control) return one(control[c]!);
    if (c === "b" && inClass) return one(8);
    if (c === "x" || c === "u") {
      const width = c === "x" ? 2 : 4;
      const hex = this.src.slice(this.#at, this.#at + width);
      if (!new RegExp(`^[0-9a-fA-F]{${width}}$`).test(hex)) throw new PatternError(`\\${c} needs ${width} hex digits`);
      this.#at += width;
      return one(parseInt(hex, 16));
    }
    if (/[A-Za-z0-9]/.test(c)) throw new PatternError(`'\\${c}' (word boundaries, backreferences, property classes) has no grammar`);
    return one(c.codePointAt(0)!);
  }
}

const CLASSES: Record<string, Range[]> = {
  d: [[0x30, 0x39]],
  w: [
    [0x30, 0x39],
    [0x41, 0x5a],
    [0x5f, 0x5f],
    [0x61, 0x7a]
  ],
  s: [
    [0x09, 0x0d],
    [0x20, 0x20]
  ]
};

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MAX_CODE = 0x10ffff;

/** Characters JSON writes as themselves; the others (quote, backslash, controls) are escapes. */
const PLAIN: readonly Range[] = [
  [0x20, 0x21],
  [0x23, 0x5b],
  [0x5d, 0x7e],
  [0x80, MAX_CODE]
];

function emit(node: Node): string {
  switch (node.kind) {
    case "seq":
      return node.items.length === 0 ? '""' : node.items.map((n) => wrap(n)).join(" ");
    case "alt":
      return node.options.map((n) => emit(n)).join(" | ");
    case "repeat": {
      const item = wrap(node.item);
      if (node.max === undefined) return node.min === 0 ? `${item}*` : node.min === 1 ? `${item}+` : `${item}{${node.min},}`;
      if (node.min === 0 && node.max === 1) return `${item}?`;
      return node.min === node.max ? `${item}{${node.min}}` : `${item}{${node.min},${node.max}}`;
    }
    case "chars":
      return chars(node.negated ? complement(node.ranges) : normalize(node.ranges));
  }
}

const wrap = (node: Node) => (node.kind === "alt" || node.kind === "seq" || (node.kind === "chars" && emit(node).includes("|")) ? `(${emit(node)})` : emit(node));

/** A set of characters: one class for the plain ones, JSON escapes for the rest. */
function chars(ranges: readonly Range[]): string {
  const plain = intersect(ranges, PLAIN);
  const escaped: string[] = [];
  for (const [from, to] of ranges) {
    for (let code = from; code <= Math.min(to, 0x1f); code++) escaped.push(literal(jsonEscape(code)));
    if (from <= QUOTE && QUOTE <= to) escaped.push(literal('\\"'));
    if (from <= BACKSLASH && BACKSLASH <= to) escaped.push(literal("\\\\"));
    if (from <= 0x7f && 0x7f <= to) escaped.push(literal("\\u007f"));
  }
  const parts = [...(plain.length > 0 ? [classOf(plain)] : []), ...escaped];
  if (parts.length === 0) throw new PatternError("a class that matches no character");
  return parts.join(" | ");
}

/**
 * A negated class or `.`: every character but these, control characters left out (a
 * reply's string has no use for them, and `.` already excludes line breaks); a quote or
 * backslash is written as its JSON escape (chars).
 */
function complement(ranges: readonly Range[]): readonly Range[] {
  const out: Range[] = [];
  let next = 0;
  for (const [from, to] of normalize(ranges)) {
    if (from > next) out.push([next, from - 1]);
    next = Math.max(next, to + 1);
  }
  if (next <= MAX_CODE) out.push([next, MAX_CODE]);
  return intersect(out, [[0x20, MAX_CODE]]);
}

function normalize(ranges: readonly Range[]): Range[] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [from, to] of sorted) {
    const last = out.at(-1);
    if (last && from <= last[1] + 1) last[1] = Math.max(last[1], to);
    else out.push([from, to]);
  }
  return out;
}

function intersect(a: readonly Range[], b: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const [af, at] of normalize(a)) for (const [bf, bt] of b) if (Math.max(af, bf) <= Math.min(at, bt)) out.push([Math.max(af, bf), Math.min(at, bt)]);
  return out;
}

const classOf = (ranges: readonly Range[]) => `[${ranges.map(([f, t]) => (f === t ? classChar(f) : `${classChar(f)}-${classChar(t)}`)).join("")}]`;

/** A character inside a GBNF class: letters and digits as themselves, anything else escaped. */
const classChar = (code: number) => (/^[A-Za-z0-9]$/.test(String.fromCodePoint(code)) ? String.fromCodePoint(code) : code <= 0xffff ? `\\u${hex(code, 4)}` : `\\U${hex(code, 8)}`);

const hex = (code: number, width: number) => code.toString(16).toUpperCase().padStart(width, "0");

/** How JSON writes a control character. */
function jsonEscape(code: number): string {
  const named: Record<number, string> = {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"};
  return named[code] ?? `\\u${hex(code, 4).toLowerCase()}`;
}

/** A GBNF string literal of this text. */
const literal = (text: string) => `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
