/**
 * A GBNF rule body without rule references (literals, classes, groups, alternation,
 * repetition) as a JavaScript RegExp, so a test can check every value against the
 * grammar without a model. Not a GBNF parser: references to other rules throw.
 */
export function gbnfToRegExp(gbnf: string): RegExp {
  let out = "";
  let i = 0;
  while (i < gbnf.length) {
    const c = gbnf[i]!;
    if (c === " " || c === "\n") i++;
    else if (c === '"') {
      let j = i + 1;
      let text = "";
      while (gbnf[j] !== '"') {
        if (gbnf[j] === "\\") {
          const [ch, len] = unescape(gbnf, j);
          text += ch;
          j += len;
        } else text += gbnf[j++];
      }
      out += text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      i = j + 1;
    } else if (c === "[") {
      let j = i + 1;
      let cls = "[";
      while (gbnf[j] !== "]") {
        if (gbnf[j] === "\\") {
          const [ch, len] = unescape(gbnf, j);
          cls += `\\u{${ch.codePointAt(0)!.toString(16)}}`;
          j += len;
        } else cls += gbnf[j++];
      }
      out += `${cls}]`;
      i = j + 1;
    } else if ("()|?*+".includes(c)) {
      out += c;
      i++;
    } else if (c === "{") {
      const j = gbnf.indexOf("}", i);
      out += gbnf.slice(i, j + 1);
      i = j + 1;
    } else throw new Error(`not a self-contained rule at ${i}: ${gbnf.slice(i, i + 20)}`);
  }
  return new RegExp(`^(?:${out})$`, "u");
}

function unescape(s: string, at: number): [string, number] {
  const e = s[at + 1]!;
  const simple: Record<string, string> = {n: "\n", r: "\r", t: "\t", '"': '"', "\\": "\\", "]": "]", "[": "[", "-": "-"};
  if (e in simple) return [simple[e]!, 2];
  const width = e === "x" ? 2 : e === "u" ? 4 : e === "U" ? 8 : 0;
  if (width === 0) throw new Error(`unknown escape \\${e}`);
  return [String.fromCodePoint(parseInt(s.slice(at + 2, at + 2 + width), 16)), 2 + width];
}
