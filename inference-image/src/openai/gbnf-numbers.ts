/**
 * GBNF for JSON numbers within bounds: the digit grammars llama.cpp's
 * json-schema-to-grammar builds for integer ranges (build_min_max_int, ported), extended
 * here to fractional numbers and to `multipleOf` a power of ten. Pure.
 *
 * A grammar may accept a subset of what the schema allows (it never writes an exponent, a
 * "-0" or more than 16 digits a part); it never accepts a value the schema refuses.
 */

/** Digits an unbounded integer part may have (as llama.cpp's default). */
const MAX_DIGITS = 16;

/** Bounds of a numeric schema, as JSON Schema gives them. */
export interface NumericBounds {
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
  readonly exclusiveMaximum?: number;
  /** Only powers of ten (1, 10, 0.01, ...) are enforceable; `multipleOfExponent` checks. */
  readonly multipleOf?: number;
}

/** The exponent e of `multipleOf` = 10^e, or undefined when it is not a power of ten. */
export function multipleOfExponent(multipleOf: number): number | undefined {
  if (!(multipleOf > 0) || !Number.isFinite(multipleOf)) return undefined;
  const e = Math.round(Math.log10(multipleOf));
  // Compare as decimal text: 0.1 is not exactly 10^-1 in binary, but is as JSON wrote it.
  return Number(`1e${e}`) === multipleOf ? e : undefined;
}

type Bound = {readonly value: number; readonly inclusive: boolean};

/** The tighter lower and upper bounds; undefined where there is none. */
function boundsOf(b: NumericBounds): {lower?: Bound; upper?: Bound} {
  const lower = tighter([b.minimum === undefined ? undefined : {value: b.minimum, inclusive: true}, b.exclusiveMinimum === undefined ? undefined : {value: b.exclusiveMinimum, inclusive: false}], 1);
  const upper = tighter([b.maximum === undefined ? undefined : {value: b.maximum, inclusive: true}, b.exclusiveMaximum === undefined ? undefined : {value: b.exclusiveMaximum, inclusive: false}], -1);
  return {...(lower ? {lower} : {}), ...(upper ? {upper} : {})};
}

function tighter(bounds: Array<Bound | undefined>, direction: 1 | -1): Bound | undefined {
  return bounds.reduce<Bound | undefined>((best, b) => {
    if (!b) return best;
    if (!best || (b.value - best.value) * direction > 0 || (b.value === best.value && !b.inclusive)) return b;
    return best;
  }, undefined);
}

/**
 * GBNF for an integer within the bounds (and a multiple of 10^e, e >= 0); undefined when
 * no integer satisfies them.
 */
export function integerGrammar(b: NumericBounds): string | undefined {
  const {lower, upper} = boundsOf(b);
  const e = b.multipleOf === undefined ? 0 : Math.max(0, multipleOfExponent(b.multipleOf) ?? 0);
  const step = 10 ** e;
  // The integers m with m * step within the bounds.
  const lo = lower === undefined ? undefined : lower.inclusive ? Math.ceil(lower.value / step) : Math.floor(lower.value / step) + 1;
  const hi = upper === undefined ? undefined : upper.inclusive ? Math.floor(upper.value / step) : Math.ceil(upper.value / step) - 1;
  if (lo !== undefined && hi !== undefined && lo > hi) return undefined;
  if (e === 0) return intRange(lo, hi);
  // m * 10^e: m's digits then e zeros, except for m = 0 (JSON has no "000").
  const zeros = ` ${literal("0".repeat(e))}`;
  const parts: string[] = [];
  if (lo === undefined || lo < 0) parts.push(`(${intRange(lo, Math.min(hi ?? -1, -1))})${zeros}`);
  if ((lo ?? -1) <= 0 && (hi ?? 1) >= 0) parts.push(`"0"`);
  if (hi === undefined || hi > 0) parts.push(`(${intRange(Math.max(lo ?? 1, 1), hi)})${zeros}`);
  return parts.join(" | ");
}

/**
 * GBNF for a number within the bounds, with at most `fractionDigits` digits after the point
 * (`multipleOf` 10^-d makes it d; a power of ten >= 1 makes it an integer); undefined when
 * the grammar can write no such number.
 */
export function numberGrammar(b: NumericBounds): string | undefined {
  const e = b.multipleOf === undefined ? undefined : multipleOfExponent(b.multipleOf);
  if (e !== undefined && e >= 0) return integerGrammar(b);
  const cap = e === undefined ? MAX_DIGITS : -e;
  const {lower, upper} = boundsOf(b);
  if (lower && upper && (lower.value > upper.value || (lower.value === upper.value && !(lower.inclusive && upper.inclusive)))) return undefined;
  const parts: string[] = [];
  // Negative values: "-" and a magnitude in (max(0, -upper), -lower]; zero is written "0".
  if (!lower || lower.value < 0) {
    const magLow: Bound = upper && upper.value < 0 ? {value: -upper.value, inclusive: upper.inclusive} : {value: 0, inclusive: false};
    const magHigh = lower ? {value: -lower.value, inclusive: lower.inclusive} : undefined;
    const mag = magnitude(magLow, magHigh, cap);
    if (mag) parts.push(`"-" (${mag})`);
  }
  if (!upper || upper.value >= 0) {
    const magLow: Bound = lower && lower.value >= 0 ? lower : {value: 0, inclusive: true};
    const mag = magnitude(magLow, upper, cap);
    if (mag) parts.push(mag);
  }
  return parts.length === 0 ? undefined : parts.join(" | ");
}

/** A set of digit strings (a fraction's digits): its non-empty alternatives, and whether "" is in it. */
interface Digits {
  readonly alts: readonly string[];
  readonly empty: boolean;
}

const NONE: Digits = {alts: [], empty: false};

/** GBNF for a non-negative number I.D within [low, high] (high undefined: unbounded). */
function magnitude(low: Bound, high: Bound | undefined, cap: number): string | undefined {
  const [a, fl] = split(low.value);
  const parts: string[] = [];
  const withFraction = (integer: string, d: Digits) => {
    const f = fraction(d);
    if (f !== undefined) parts.push(`${integer}${f}`);
  };
  if (high === undefined) {
    withFraction(literal(String(a)), atLeast(fl, low.inclusive, cap));
    parts.push(`(${intRange(a + 1, undefined)})${fraction(anyDigits(cap)) ?? ""}`);
    return parts.join(" | ");
  }
  const [b, fh] = split(high.value);
  if (a === b) withFraction(literal(String(a)), between(fl, low.inclusive, fh, high.inclusive, cap));
  else {
    withFraction(literal(String(a)), atLeast(fl, low.inclusive, cap));
    if (b - a >= 2) parts.push(`(${intRange(a + 1, b - 1)})${fraction(anyDigits(cap)) ?? ""}`);
    withFraction(literal(String(b)), atMost(fh, high.inclusive, cap));
  }
  return parts.length === 0 ? undefined : parts.join(" | ");
}

/** A non-negative bound as its integer part and its fraction's digits ("" for none). */
function split(value: number): [number, string] {
  const [integer, digits = ""] = decimalText(value).split(".");
  return [Number(integer), digits];
}

/** A number as JSON wrote it, in plain decimals: 1e-7 is "0.0000001" (toFixed(20) would show binary noise). */
export function decimalText(value: number): string {
  const [mantissa = "", exponent = "0"] = String(value).split("e");
  const places = Math.max(0, (mantissa.split(".")[1]?.length ?? 0) - Number(exponent));
  return value.toFixed(Math.min(100, places));
}

/** `("." D)?`, or `"." D` when D has no empty string; undefined for the empty set. */
function fraction(d: Digits): string | undefined {
  if (d.alts.length === 0) return d.empty ? "" : undefined;
  const body = ` "." (${d.alts.join(" | ")})`;
  return d.empty ? ` (${body.trim()})?` : body;
}

const isZero = (digits: string) => /^0*$/.test(digits);
const anyDigits = (cap: number): Digits => ({alts: cap > 0 ? [`[0-9]{1,${cap}}`] : [], empty: true});

/** Fractions D (up to `cap` digits) with 0.D >= 0.s, or > when not inclusive. */
function atLeast(s: string, inclusive: boolean, cap: number): Digits {
  if (isZero(s)) {
    if (inclusive) return anyDigits(cap);
    // Strictly above zero: some digit is not 0.
    if (cap === 0) return NONE;
    const half = Math.floor((cap - 1) / 2);
    return {alts: [half === 0 ? "[1-9]" : `"0"{0,${half}} [1-9] [0-9]{0,${half}}`], empty: false};
  }
  if (cap === 0) return NONE;
  const d = Number(s[0]);
  const alts = d < 9 ? [`${digitRange(d + 1, 9)}${rest(cap)}`] : [];
  return {alts: [...alts, ...prefixed(d, atLeast(s.slice(1), inclusive, cap - 1))], empty: false};
}

/** Fractions D (up to `cap` digits) with 0.D <= 0.s, or < when not inclusive. */
function atMost(s: string, inclusive: boolean, cap: number): Digits {
  if (isZero(s)) return inclusive ? {alts: cap > 0 ? [`"0"{1,${cap}}`] : [], empty: true} : NONE;
  if (cap === 0) return {alts: [], empty: true};
  const d = Number(s[0]);
  const alts = d > 0 ? [`${digitRange(0, d - 1)}${rest(cap)}`] : [];
  return {alts: [...alts, ...prefixed(d, atMost(s.slice(1), inclusive, cap - 1))], empty: true};
}

/** Fractions D with lo <= 0.D <= hi (each bound inclusive or not). */
function between(lo: string, loInclusive: boolean, hi: string, hiInclusive: boolean, cap: number): Digits {
  if (isZero(lo) && loInclusive) return atMost(hi, hiInclusive, cap);
  if (isZero(hi)) return NONE; // lo > 0 = hi here, or lo = 0 exclusive and hi = 0
  if (cap === 0) return NONE;
  const l = Number(lo[0] ?? "0");
  const h = Number(hi[0]);
  if (l === h) return {alts: prefixed(l, between(lo.slice(1), loInclusive, hi.slice(1), hiInclusive, cap - 1)), empty: false};
  const alts = [
    ...prefixed(l, atLeast(lo.slice(1), loInclusive, cap - 1)),
    ...(h - l >= 2 ? [`${digitRange(l + 1, h - 1)}${rest(cap)}`] : []),
    ...prefixed(h, atMost(hi.slice(1), hiInclusive, cap - 1))
  ];
  return {alts, empty: false};
}

/** Digit d followed by each string of `then`. */
function prefixed(d: number, then: Digits): string[] {
  const alts = then.alts.length === 0 ? [] : [`"${d}" (${then.alts.join(" | ")})`];
  return then.empty ? [...alts, `"${d}"`] : alts;
}

/** Any digits after the first of a `cap`-digit fraction. */
const rest = (cap: number) => (cap > 1 ? ` [0-9]{0,${cap - 1}}` : "");
const digitRange = (from: number, to: number) => (from === to ? `[${from}]` : `[${from}-${to}]`);
const literal = (text: string) => `"${text}"`;

/**
 * GBNF for an integer in [min, max] (either may be open), without leading zeros: llama.cpp's
 * build_min_max_int, ported (its two-sided case as is; see the one-sided case below).
 */
export function intRange(min: number | undefined, max: number | undefined, decimalsLeft = MAX_DIGITS): string {
  let out = "";
  const moreDigits = (minDigits: number, maxDigits: number) => {
    out += "[0-9]";
    if (minDigits === maxDigits && minDigits === 1) return;
    out += `{${minDigits}`;
    if (maxDigits !== minDigits) out += `,${Number.isFinite(maxDigits) ? maxDigits : ""}`;
    out += "}";
  };
  const digitChars = (from: string, to: string) => (out += from === to ? `[${from}]` : `[${from}-${to}]`);
  const next = (c: string, by: number) => String.fromCharCode(c.charCodeAt(0) + by);
  const uniformRange = (from: string, to: string): void => {
    let i = 0;
    while (i < from.length && i < to.length && from[i] === to[i]) i++;
    if (i > 0) out += `"${from.slice(0, i)}"`;
    if (i >= from.length || i >= to.length) return;
    if (i > 0) out += " ";
    const subLen = from.length - i - 1;
    if (subLen === 0) {
      out += `[${from[i]}-${to[i]}]`;
      return;
    }
    const fromSub = from.slice(i + 1);
    const toSub = to.slice(i + 1);
    const subZeros = "0".repeat(subLen);
    const subNines = "9".repeat(subLen);
    let toReached = false;
    out += "(";
    if (fromSub === subZeros) {
      digitChars(from[i]!, next(to[i]!, -1));
      out += " ";
      moreDigits(subLen, subLen);
    } else {
      out += `[${from[i]}] (`;
      uniformRange(fromSub, subNines);
      out += ")";
      if (from[i]! < next(to[i]!, -1)) {
        out += " | ";
        if (toSub === subNines) {
          digitChars(next(from[i]!, 1), to[i]!);
          toReached = true;
        } else digitChars(next(from[i]!, 1), next(to[i]!, -1));
        out += " ";
        moreDigits(subLen, subLen);
      }
    }
    if (!toReached) {
      out += " | ";
      digitChars(to[i]!, to[i]!);
      out += " ";
      uniformRange(subZeros, toSub);
    }
    out += ")";
  };

  if (min !== undefined && max !== undefined) {
    if (min < 0 && max < 0) return `"-" (${intRange(-max, -min, decimalsLeft)})`;
    if (min < 0) {
      out += `"-" (${intRange(0, -min, decimalsLeft)}) | `;
      min = 0;
    }
    let minS = String(min);
    const maxS = String(max);
    for (let digits = minS.length; digits < maxS.length; digits++) {
      uniformRange(minS, "9".repeat(digits));
      minS = `1${"0".repeat(digits)}`;
      out += " | ";
    }
    uniformRange(minS, maxS);
    return out;
  }
  // One bound: llama.cpp recurses on the digits after the first, which loses their count
  // (min 105 let "15" through); same-length values from uniformRange and longer ones with
  // any digits say it directly.
  const longer = (digits: number) => `[1-9] [0-9]{${digits},${decimalsLeft - 1}}`;
  if (min !== undefined) {
    if (min < 0) return `"-" (${intRange(1, -min)}) | [0] | ${longer(0)}`;
    const minS = String(min);
    uniformRange(minS, "9".repeat(minS.length));
    return minS.length < decimalsLeft ? `${out} | ${longer(minS.length)}` : out;
  }
  if (max !== undefined) {
    if (max >= 0) return `"-" ${longer(0)} | ${intRange(0, max)}`;
    return `"-" (${intRange(-max, undefined)})`;
  }
  // Neither bound: any integer (not reached from the schema, which sends plain integers to node-llama-cpp).
  return `"-"? ([0] | ${longer(0)})`;
}
