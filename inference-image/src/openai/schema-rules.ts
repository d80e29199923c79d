import {createHash} from "node:crypto";
import {FORMAT_GRAMMARS, NATIVE_FORMATS} from "./gbnf-formats.js";
import {integerGrammar, numberGrammar, type NumericBounds} from "./gbnf-numbers.js";
import {patternGrammar} from "./gbnf-pattern.js";

/**
 * The strict-mode keywords node-llama-cpp's JSON-schema grammar ignores (numeric bounds,
 * `multipleOf`, `pattern`, the formats it lacks) made enforceable: each such node is swapped
 * for a placeholder `const` before node-llama-cpp writes the grammar, and the placeholder's
 * literal in the grammar text is then replaced by a rule of ours. node-llama-cpp keeps
 * writing everything else (objects, arrays, whitespace, its own formats). Pure.
 */

type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => typeof v === "object" && v !== null && !Array.isArray(v);

export const NUMERIC_KEYWORDS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"] as const;

export interface WithRules {
  /** The schema for node-llama-cpp, placeholders in place of the constrained nodes. */
  readonly schema: Node;
  /** Each placeholder's GBNF literal in node-llama-cpp's grammar, and the rule that replaces it. */
  readonly rules: ReadonlyArray<{readonly literal: string; readonly name: string; readonly body: string}>;
}

/**
 * The GBNF of a whole JSON value for a node that needs a rule of ours; undefined when
 * node-llama-cpp's grammar enforces it as is. Throws (RangeError, PatternError) for a node
 * no grammar can satisfy; json-schema.ts calls it first to turn that into a 400.
 */
export function ruleFor(node: Node): string | undefined {
  const type = node["type"];
  if ((type === "integer" || type === "number") && NUMERIC_KEYWORDS.some((k) => typeof node[k] === "number")) {
    const bounds = node as NumericBounds;
    const grammar = type === "integer" ? integerGrammar(bounds) : numberGrammar(bounds);
    if (grammar === undefined) throw new RangeError(`no ${type} satisfies ${NUMERIC_KEYWORDS.filter((k) => k in node).map((k) => `${k} ${String(node[k])}`).join(", ")}`);
    return grammar;
  }
  if (type !== "string") return undefined;
  if (typeof node["pattern"] === "string") return quoted(patternGrammar(node["pattern"]));
  const format = typeof node["format"] === "string" ? FORMAT_GRAMMARS[node["format"]] : undefined;
  return format === undefined ? undefined : quoted(format);
}

const quoted = (inside: string) => `"\\"" (${inside}) "\\""`;

/** Swaps each node that needs a rule of ours for a placeholder; `rules` empty when none does. */
export function withRules(schema: Node): WithRules {
  const nonce = createHash("sha256").update(JSON.stringify(schema)).digest("hex").slice(0, 12);
  const rules: Array<{literal: string; name: string; body: string}> = [];
  const visit = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(visit);
    if (!isNode(value)) return value;
    const body = ruleFor(value);
    if (body !== undefined) {
      const placeholder = `paddock-rule-${rules.length}-${nonce}`;
      // node-llama-cpp writes a string const as the GBNF literal of its JSON text.
      rules.push({literal: `"\\"${placeholder}\\""`, name: `paddock-rule-${rules.length}`, body});
      return {const: placeholder};
    }
    // A list of types with a constraint: one copy per type, so each can carry its rule.
    if (Array.isArray(value["type"]) && (value["type"] as unknown[]).length > 1 && [...NUMERIC_KEYWORDS, "pattern", "format"].some((k) => k in value)) {
      return visit({oneOf: (value["type"] as unknown[]).map((t) => ({...value, type: t}))});
    }
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === "const" || k === "enum" ? v : visit(v)]));
  };
  return {schema: visit(schema) as Node, rules};
}

/** node-llama-cpp's grammar with each placeholder replaced by its rule. Throws if one is missing (a node-llama-cpp change). */
export function spliceRules(grammar: string, rules: WithRules["rules"]): string {
  let out = grammar;
  for (const rule of rules) {
    if (!out.includes(rule.literal)) throw new Error(`node-llama-cpp's grammar lost the placeholder ${rule.literal}`);
    out = out.split(rule.literal).join(rule.name);
  }
  return `${out.trimEnd()}\n${rules.map((r) => `${r.name} ::= ${r.body}`).join("\n")}\n`;
}

/**
 * The schema as node-llama-cpp may see it where our rules cannot reach (tool_choice auto,
 * whose grammar LlamaChat writes): a format it does not know would become an empty-string
 * rule there, so those are left out (the bounds and patterns it ignores anyway).
 */
export function withoutForeignFormats(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutForeignFormats);
  if (!isNode(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k, v]) => k !== "format" || (typeof v === "string" && NATIVE_FORMATS.has(v)))
      .map(([k, v]) => [k, k === "const" || k === "enum" ? v : withoutForeignFormats(v)])
  );
}
