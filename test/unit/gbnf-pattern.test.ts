import {Ajv} from "ajv";
import {FORMAT_GRAMMARS} from "../../inference-image/src/openai/gbnf-formats.js";
import {PatternError, patternGrammar} from "../../inference-image/src/openai/gbnf-pattern.js";
import {addFormats} from "../helpers/ajv-formats.js";
import {gbnfToRegExp} from "../helpers/gbnf-regex.js";

/** A small seeded generator, so a failure names a string that reproduces. */
function random(seed: number): () => number {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

/** The inside of a JSON string: what the grammar writes for a value. */
const inJson = (s: string) => JSON.stringify(s).slice(1, -1);

function samples(alphabet: string, count: number, maxLength: number, seed: number): string[] {
  const next = random(seed);
  const chars = [...alphabet];
  return Array.from({length: count}, () => Array.from({length: Math.floor(next() * (maxLength + 1))}, () => chars[Math.floor(next() * chars.length)]!).join(""));
}

describe("JSON Schema patterns as GBNF inside a JSON string", () => {
  // Anchored patterns: the grammar's strings are exactly the regex's matches.
  const anchored: Array<[pattern: string, alphabet: string, examples: string[]]> = [
    ["^[A-Z]{3}-\\d{2,4}$", "ABZa-0159", ["ABC-12", "XYZ-9999"]],
    ["^\\+?[0-9]{2}( [0-9]{3}){2}$", "+0129 ", ["+33 123 456", "44 000 999"]],
    ["^(cat|dog)s?$", "catdogsx", ["cat", "dogs"]],
    ["^[^aeiou]+$", "abcdeio\"\\\n", ["bcd", 'x"y']],
    ["^(?:[a-z]+\\.)*[a-z]+@[a-z]{2,5}\\.(com|org)$", "ab.@co.mrg", ["a.b@co.com", "x@ab.org"]],
    ["^a{2,}b?$", "ab", ["aa", "aaab"]],
    ["^\\w+\\s\\W$", "a_9 \t!é", ["ab_1 !", "x\t-"]],
    ["^(?<year>\\d{4})-(?<month>0[1-9]|1[0-2])$", "0129-", ["2024-01", "1999-12"]],
    ["^[\\x41-\\x43\\u00e9]+$", "ABCDé", ["AéC"]],
    ["^a.c$", "ab\"\\c\n", ["abc", 'a"c']]
  ];

  it.each(anchored)("%s: accepts exactly what the regex matches", (pattern, alphabet, examples) => {
    const grammar = gbnfToRegExp(patternGrammar(pattern));
    // The regex, with `.` and negated classes leaving out control characters as the grammar
    // does (a subset: every string it writes still matches the pattern itself).
    const noControls = String.raw`\x00-\x1f\x7f`;
    const oracle = new RegExp(
      pattern
        .replace(/(?<!\\)\./g, `[^${noControls}]`)
        .replace(/\[\^/g, `[^${noControls}`)
        .replace(/\\W/g, String.raw`[^\w${noControls}]`),
      "u"
    );
    const regex = new RegExp(pattern, "u");
    for (const s of examples) expect([s, grammar.test(inJson(s))]).toEqual([s, true]);
    for (const s of samples(alphabet, 3000, 12, pattern.length)) {
      const written = grammar.test(inJson(s));
      expect([s, written]).toEqual([s, oracle.test(s)]);
      if (written) expect([s, regex.test(s)]).toEqual([s, true]);
    }
  });

  it("an unanchored pattern writes a match, which the pattern finds anywhere", () => {
    const grammar = gbnfToRegExp(patternGrammar("[0-9]{3}"));
    expect(grammar.test("123")).toBe(true);
    expect(grammar.test("a123")).toBe(false);
    expect(new RegExp("[0-9]{3}").test("a123")).toBe(true);
  });

  it.each(["(?=a)b", "(?<!a)b", "(a)\\1", "\\bword\\b", "\\p{L}+", "a{2000}"])("%s has no grammar: PatternError says why", (pattern) => {
    expect(() => patternGrammar(pattern)).toThrow(PatternError);
  });
});

describe("string formats as GBNF: every value the grammar writes is valid to ajv-formats", () => {
  const ajv = addFormats(new Ajv());
  const examples: Record<string, string[]> = {
    email: ["jane.doe@example.com", "a_b+c@mail.co.uk", "x-1@a-b.io"],
    hostname: ["example.com", "a.b-c.d", "localhost"],
    ipv4: ["192.168.0.1", "0.0.0.0", "255.255.255.255", "10.20.30.40"],
    ipv6: ["2001:0db8:85a3:0000:0000:8a2e:0370:7334", "fe80:0:0:0:202:b3ff:fe1e:8329"],
    uuid: ["123e4567-e89b-12d3-a456-426614174000", "00000000-0000-0000-0000-000000000000"],
    duration: ["P3Y6M4DT12H30M5S", "PT5M", "P2W", "P1D", "PT1H"]
  };

  it.each(Object.keys(FORMAT_GRAMMARS))("%s: its common values are written, and nothing ajv-formats refuses", (format) => {
    const grammar = gbnfToRegExp(FORMAT_GRAMMARS[format]!);
    const valid = ajv.compile({type: "string", format});
    for (const s of examples[format]!) expect([s, grammar.test(s), valid(s)]).toEqual([s, true, true]);
    // Near misses of each example: characters swapped, dropped and added, and any that
    // the grammar still takes must be valid.
    const next = random(format.length);
    const alphabet = [...new Set(examples[format]!.join("") + ".:-@0129afzPTHMSDWY256")];
    let accepted = 0;
    for (const base of examples[format]!) {
      for (let i = 0; i < 2000; i++) {
        const chars = [...base];
        for (let edits = 1 + Math.floor(next() * 3); edits > 0; edits--) {
          const at = Math.floor(next() * (chars.length + 1));
          const c = alphabet[Math.floor(next() * alphabet.length)]!;
          const op = next();
          if (op < 0.4) chars[at] = c;
          else if (op < 0.7) chars.splice(at, 1);
          else chars.splice(at, 0, c);
        }
        const s = chars.join("");
        if (!grammar.test(s)) continue;
        accepted++;
        expect([s, valid(s)]).toEqual([s, true]);
      }
    }
    // The mutations reached values of the grammar beyond the examples themselves.
    expect(accepted).toBeGreaterThan(50);
  });
});
