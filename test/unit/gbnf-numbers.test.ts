import {decimalText, integerGrammar, intRange, multipleOfExponent, numberGrammar, type NumericBounds} from "../../inference-image/src/openai/gbnf-numbers.js";
import {gbnfToRegExp} from "../helpers/gbnf-regex.js";

/** Whether a number satisfies the bounds, as a validator (ajv) decides it. */
function satisfies(x: number, b: NumericBounds): boolean {
  if (b.minimum !== undefined && x < b.minimum) return false;
  if (b.maximum !== undefined && x > b.maximum) return false;
  if (b.exclusiveMinimum !== undefined && x <= b.exclusiveMinimum) return false;
  if (b.exclusiveMaximum !== undefined && x >= b.exclusiveMaximum) return false;
  if (b.multipleOf !== undefined && Math.abs(Math.round(x / b.multipleOf) * b.multipleOf - x) > 1e-9) return false;
  return true;
}

describe("integer ranges as digit grammars (llama.cpp's build_min_max_int)", () => {
  const ranges: Array<[number | undefined, number | undefined]> = [
    [0, 130], [1, 9], [-5, 5], [-120, -7], [17, 3004], [0, 0], [999, 1001], [5, undefined], [-23, undefined], [undefined, 42], [undefined, -15], [105, undefined], [0, undefined]
  ];
  it.each(ranges)("[%s, %s] accepts exactly its integers, written without leading zeros", (min, max) => {
    const re = gbnfToRegExp(intRange(min, max));
    for (let x = -1200; x <= 4000; x++) expect([x, re.test(String(x))]).toEqual([x, (min === undefined || x >= min) && (max === undefined || x <= max)]);
    for (const bad of ["01", "007", "+1", "1.0", "1e2"]) expect(re.test(bad)).toBe(false);
  });

  it.each<NumericBounds>([
    {minimum: 0, maximum: 130},
    {exclusiveMinimum: 0, exclusiveMaximum: 10},
    {minimum: 2.5, maximum: 7.5},
    {minimum: -1000, maximum: 1000, multipleOf: 100},
    {minimum: 15, multipleOf: 10},
    {maximum: -15, multipleOf: 10},
    {minimum: 3, exclusiveMinimum: 3, maximum: 9}
  ])("integer %j: every integer in a window, accepted iff valid", (b) => {
    const re = gbnfToRegExp(integerGrammar(b)!);
    for (let x = -1500; x <= 1500; x++) expect([x, re.test(String(x))]).toEqual([x, satisfies(x, b)]);
  });

  it("has no grammar when no integer fits", () => {
    expect(integerGrammar({minimum: 2.1, maximum: 2.9})).toBeUndefined();
    expect(integerGrammar({exclusiveMinimum: 3, exclusiveMaximum: 4})).toBeUndefined();
  });
});

describe("number ranges as digit grammars", () => {
  const cases: NumericBounds[] = [
    {minimum: 0, maximum: 1},
    {exclusiveMinimum: 0, exclusiveMaximum: 1},
    {minimum: -1.5, maximum: 2.25},
    {minimum: 0.125, maximum: 0.5},
    {minimum: 3.14, exclusiveMaximum: 3.2},
    {exclusiveMinimum: -2},
    {maximum: -0.5},
    {minimum: 10, maximum: 20, multipleOf: 0.01},
    {minimum: 0, maximum: 100, multipleOf: 0.5},
    {minimum: -3, maximum: 3, multipleOf: 0.1},
    {minimum: 1, maximum: 10000, multipleOf: 100}
  ];
  const probes = (b: NumericBounds): string[] => {
    const texts = new Set<string>();
    for (let x = -30; x <= 30; x += 0.125) texts.add(decimalText(x));
    for (let x = -3.3; x <= 3.3; x += 0.01) texts.add(x.toFixed(2)).add(x.toFixed(3)).add(x.toFixed(1));
    for (const v of [b.minimum, b.maximum, b.exclusiveMinimum, b.exclusiveMaximum]) {
      if (v === undefined) continue;
      for (const d of [0, 1e-9, 0.001, 0.01, 0.1, 1]) for (const t of [v - d, v + d]) texts.add(decimalText(Number(t.toFixed(9))));
    }
    return [...texts];
  };

  it.each(cases)("%j: a value is accepted only if valid, and some valid value is", (b) => {
    const multipleOf = b.multipleOf;
    if (multipleOf !== undefined && multipleOfExponent(multipleOf) === undefined) return;
    const re = gbnfToRegExp(numberGrammar(b)!);
    let accepted = 0;
    for (const text of probes(b)) {
      if (!re.test(text)) continue;
      accepted++;
      expect([text, satisfies(Number(text), b)]).toEqual([text, true]);
    }
    expect(accepted).toBeGreaterThan(0);
  });

  it("accepts the values inside the bounds that it writes with few digits", () => {
    const re = gbnfToRegExp(numberGrammar({exclusiveMinimum: 0, exclusiveMaximum: 1})!);
    expect(["0.5", "0.001", "0.999"].every((t) => re.test(t))).toBe(true);
    expect(["0", "1", "0.0", "1.0", "-0.5"].some((t) => re.test(t))).toBe(false);
  });

  it("reads multipleOf as a power of ten or not at all", () => {
    expect([multipleOfExponent(0.01), multipleOfExponent(1), multipleOfExponent(1000), multipleOfExponent(0.5), multipleOfExponent(3)]).toEqual([-2, 0, 3, undefined, undefined]);
  });
});
