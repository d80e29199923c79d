import {invalidRequest} from "../core/errors.js";
import {FORMAT_GRAMMARS, NATIVE_FORMATS} from "./gbnf-formats.js";
import {multipleOfExponent} from "./gbnf-numbers.js";
import {PatternError} from "./gbnf-pattern.js";
import {NUMERIC_KEYWORDS, ruleFor} from "./schema-rules.js";

/**
 * The JSON Schema subset the output grammar enforces (node-llama-cpp's GBNF JSON schema,
 * with rules of ours for what it lacks: schema-rules.ts), and the translation of a client's
 * schema into it. Pure.
 *
 * Enforced: `type` (one type, or several of string/number/integer/boolean/null),
 * `const`, `enum`, `anyOf`/`oneOf` (one branch is generated), `properties`,
 * `additionalProperties` (false unless given), `minProperties`/`maxProperties`, `items`,
 * `prefixItems`, `minItems`/`maxItems`, `minLength`/`maxLength`, `minimum`/`maximum`/
 * `exclusiveMinimum`/`exclusiveMaximum`, `multipleOf` (a power of ten), `pattern` (the
 * subset gbnf-pattern.ts lists), `format` (date-time, date, time, duration, email,
 * hostname, ipv4, ipv6, uuid), `$defs`/`definitions` with local `$ref`. Every property in
 * `properties` is generated, so `required` is always satisfied. Annotations (`title`,
 * `description`, `default`, `examples`, `$schema`, `$id`, `$comment`, `deprecated`,
 * `readOnly`, `writeOnly`) are accepted.
 *
 * Strict mode has OpenAI's rules too: an object's properties are all `required` and its
 * `additionalProperties` is false.
 *
 * Not enforceable: other `multipleOf`s and `format`s, `pattern` beside `minLength`/
 * `maxLength` or `format`, `allOf`, `not`, `if`/`then`/`else`, `patternProperties`,
 * `propertyNames`, `dependentRequired`, `dependentSchemas`, `uniqueItems`, `contains`,
 * `unevaluated*`. With `strict: true` any of them is a 400 naming the keyword; with
 * `strict: false` they are dropped, so the output has the right shape but may break them.
 */

const ANNOTATIONS = new Set(["title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly"]);
const IMMUTABLE_TYPES = new Set(["string", "number", "integer", "boolean", "null"]);
const FORMATS = new Set([...NATIVE_FORMATS, ...Object.keys(FORMAT_GRAMMARS)]);
/** Keywords handled below, per kind of node. */
const STRUCTURE = new Set([
  ...["type", "const", "enum", "anyOf", "oneOf", "properties", "required", "additionalProperties", "minProperties", "maxProperties", "items", "prefixItems", "minItems", "maxItems"],
  ...["minLength", "maxLength", "format", "pattern", "$defs", "definitions", "$ref", "nullable", ...NUMERIC_KEYWORDS]
]);
/** Keywords of an object schema that its anyOf/oneOf branches share (distributed into each). */
const OBJECT_SIBLINGS = ["type", "properties", "required", "additionalProperties", "minProperties", "maxProperties"];

export interface Translated {
  /** The schema for llama.createGrammarForJsonSchema. */
  readonly schema: Record<string, unknown>;
  /** What strict: false dropped, as `<path>: <keyword>`. */
  readonly dropped: readonly string[];
}

type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => typeof v === "object" && v !== null && !Array.isArray(v);

/** Throws ApiError(400) with `param` at the offending keyword. */
export function toGrammarSchema(schema: unknown, strict: boolean, param: string): Translated {
  const translator = new Translator(schema, strict);
  return {schema: translator.walk(schema, param, true), dropped: translator.dropped};
}

/** One schema's translation: the walk, and what strict: false dropped on the way. */
class Translator {
  readonly dropped: string[] = [];
  readonly #defsKey: "$defs" | "definitions";

  constructor(
    private readonly root: unknown,
    private readonly strict: boolean
  ) {
    this.#defsKey = isNode(root) && isNode(root["definitions"]) && !isNode(root["$defs"]) ? "definitions" : "$defs";
  }

  fail(path: string, message: string): never {
    throw invalidRequest(`Invalid schema for response_format: ${path}: ${message}`, path, "invalid_json_schema");
  }

  /** A keyword the grammar cannot enforce: 400 in strict mode, else dropped (and reported). */
  unsupported(path: string, keyword: string, detail?: string): void {
    const why = detail === undefined ? "" : ` (${detail})`;
    if (this.strict) this.fail(`${path}.${keyword}`, `'${keyword}'${why} cannot be enforced by this server's grammar; see the supported subset in docs/inference-server.md, or set strict: false to have it ignored`);
    this.dropped.push(`${path}: ${keyword}`);
  }

  walk(node: unknown, path: string, root: boolean): Node {
    if (!isNode(node)) return this.fail(path, "must be a JSON object (a schema)");
    const distributed = distribute(node);
    if (distributed !== node) return this.walk(distributed, path, root);
    const listed = Array.isArray(node["type"]) ? (node["type"] as unknown[]) : node["type"] !== undefined ? [node["type"]] : [];
    const types = node["nullable"] === true && listed.length > 0 && !listed.includes("null") ? [...listed, "null"] : listed;
    if (types.length > 1 && types.some((t) => typeof t === "string" && !IMMUTABLE_TYPES.has(t))) {
      // Several types including object or array: one single-typed copy per type.
      return {oneOf: types.map((t) => (t === "null" ? {type: "null"} : this.walk({...node, type: t, nullable: false}, path, root)))};
    }
    const out: Node = {};
    for (const [key, value] of Object.entries(node)) {
      if (ANNOTATIONS.has(key)) {
        if (key === "description" && typeof value === "string") out["description"] = value;
      } else if (!STRUCTURE.has(key)) this.unsupported(path, key);
      else this.#keyword(out, key, value, types, path, root);
    }
    this.#required(node, out, path);
    this.#checkRule(out, path);
    if (!("type" in out) && !("oneOf" in out) && !("const" in out) && !("enum" in out) && !("$ref" in out)) {
      if (isNode(out["properties"])) out["type"] = "object";
      else if (out["items"] !== undefined || out["prefixItems"] !== undefined) out["type"] = "array";
      else this.fail(path, "needs a type (or const, enum, anyOf, $ref): a schema that accepts any value cannot be generated");
    }
    return out;
  }

  /** Translates one structural keyword of a node into `out`. */
  #keyword(out: Node, key: string, value: unknown, types: unknown[], path: string, root: boolean): void {
    switch (key) {
      case "type":
        if (types.length === 0 || types.some((t) => typeof t !== "string" || !(IMMUTABLE_TYPES.has(t) || t === "object" || t === "array"))) this.fail(`${path}.type`, "must be a JSON Schema type name or a list of them");
        out["type"] = types.length === 1 ? types[0] : types;
        return;
      case "nullable":
      case "required":
        return; // checked against the properties once they are known (#required)
      case "const":
      case "enum":
        return this.#literal(out, key, value, path);
      case "anyOf":
      case "oneOf":
        if (!Array.isArray(value) || value.length === 0) this.fail(`${path}.${key}`, "must be a non-empty array of schemas");
        out["oneOf"] = (value as unknown[]).map((s, i) => this.walk(s, `${path}.${key}[${i}]`, false));
        return;
      case "properties":
        if (!isNode(value)) this.fail(`${path}.properties`, "must be an object of schemas");
        out["properties"] = Object.fromEntries(Object.entries(value as Node).map(([k, s]) => [k, this.walk(s, `${path}.properties.${k}`, false)]));
        return;
      case "additionalProperties":
        out[key] = typeof value === "boolean" ? value : this.walk(value, `${path}.additionalProperties`, false);
        return;
      case "items":
        if (Array.isArray(value)) out["prefixItems"] = value.map((s, i) => this.walk(s, `${path}.items[${i}]`, false));
        else out["items"] = this.walk(value, `${path}.items`, false);
        return;
      case "prefixItems":
        if (!Array.isArray(value)) this.fail(`${path}.prefixItems`, "must be an array of schemas");
        out["prefixItems"] = (value as unknown[]).map((s, i) => this.walk(s, `${path}.prefixItems[${i}]`, false));
        return;
      case "format":
        if (typeof value === "string" && FORMATS.has(value)) out["format"] = value;
        else this.unsupported(path, "format", `'${String(value)}' is not one of ${[...FORMATS].join(", ")}`);
        return;
      case "pattern":
        if (typeof value !== "string") this.fail(`${path}.pattern`, "must be a regular expression (a string)");
        out["pattern"] = value;
        return;
      case "minimum":
      case "maximum":
      case "exclusiveMinimum":
      case "exclusiveMaximum":
        if (typeof value !== "number" || !Number.isFinite(value)) this.fail(`${path}.${key}`, "must be a number");
        out[key] = value;
        return;
      case "multipleOf":
        if (typeof value !== "number" || !(value > 0)) this.fail(`${path}.multipleOf`, "must be a number above 0");
        if (multipleOfExponent(value as number) === undefined) this.unsupported(path, "multipleOf", `${String(value)}: only powers of ten, like 1, 10 or 0.01`);
        else out[key] = value;
        return;
      case "$defs":
      case "definitions":
        return this.#defs(out, key, value, path, root);
      case "$ref":
        return this.#ref(out, value, path);
      default:
        // minProperties, maxProperties, minItems, maxItems, minLength, maxLength
        if (typeof value !== "number" || !Number.isInteger(value) || value < 0) this.fail(`${path}.${key}`, "must be a non-negative integer");
        out[key] = value;
    }
  }

  /**
   * Checks that the node's own rule (bounds, pattern, format) can be written, dropping (or,
   * strict, refusing) what cannot: a pattern beside lengths or a format, an unsupported
   * regex, bounds no value meets.
   */
  #checkRule(out: Node, path: string): void {
    if (typeof out["pattern"] === "string") {
      // zod's .email(), .uuid() and the like send a format with the pattern zod itself
      // checks: the grammar holds the pattern, and the format is reported as not enforced.
      if ("format" in out) {
        this.dropped.push(`${path}: format beside a pattern`);
        delete out["format"];
      }
      for (const k of ["minLength", "maxLength"]) {
        if (!(k in out)) continue;
        this.unsupported(path, k, "beside a pattern");
        delete out[k];
      }
    }
    try {
      ruleFor(out);
    } catch (error) {
      if (error instanceof PatternError) {
        this.unsupported(path, "pattern", error.message);
        delete out["pattern"];
      } else if (error instanceof RangeError) {
        if (this.strict) this.fail(path, `${error.message}: no value can be generated`);
        for (const k of NUMERIC_KEYWORDS) {
          if (!(k in out)) continue;
          this.dropped.push(`${path}: ${k}`);
          delete out[k];
        }
      } else throw error;
    }
  }

  /**
   * Every generated object holds all its properties, so `required` holds when each name is
   * one of them. A required name missing from `properties` could not be enforced: strict
   * refuses it (the output would not validate), lenient reports it dropped.
   */
  #required(node: Node, out: Node, path: string): void {
    const required = node["required"];
    if (this.strict && isNode(out["properties"])) this.#strictObject(node, out["properties"], path);
    if (required === undefined) return;
    if (!Array.isArray(required) || required.some((r) => typeof r !== "string")) return this.fail(`${path}.required`, "must be an array of property names");
    const properties = isNode(out["properties"]) ? out["properties"] : {};
    for (const name of required as string[]) {
      if (name in properties) continue;
      if (this.strict) this.fail(`${path}.required`, `'${name}' is required but not among the properties: it cannot be generated`);
      this.dropped.push(`${path}: required ${name}`);
    }
  }

  /** OpenAI's strict-mode rules for an object: every property required, no others allowed. */
  #strictObject(node: Node, properties: Node, path: string): void {
    const required = Array.isArray(node["required"]) ? (node["required"] as unknown[]) : [];
    const optional = Object.keys(properties).find((name) => !required.includes(name));
    if (optional !== undefined) this.fail(`${path}.required`, `strict mode needs every property required, and '${optional}' is not (make it nullable, e.g. "type": ["string", "null"], to let it be empty)`);
    if (node["additionalProperties"] !== false) this.fail(`${path}.additionalProperties`, "strict mode needs additionalProperties: false");
  }

  #literal(out: Node, key: "const" | "enum", value: unknown, path: string): void {
    if (key === "enum" && (!Array.isArray(value) || value.length === 0)) this.fail(`${path}.enum`, "must be a non-empty array");
    if ((key === "enum" ? (value as unknown[]) : [value]).some((v) => v !== null && typeof v === "object")) {
      this.unsupported(path, key, key === "enum" ? "of objects or arrays" : "an object or array");
      return;
    }
    out[key] = value;
  }

  #defs(out: Node, key: "$defs" | "definitions", value: unknown, path: string, root: boolean): void {
    if (!root) return this.unsupported(path, key);
    if (key !== this.#defsKey) return;
    if (!isNode(value)) this.fail(`${path}.${key}`, "must be an object of schemas");
    out["$defs"] = Object.fromEntries(Object.entries(value as Node).map(([k, s]) => [k, this.walk(s, `${path}.${key}.${k}`, false)]));
  }

  #ref(out: Node, value: unknown, path: string): void {
    const m = typeof value === "string" ? /^#\/(\$defs|definitions)\/([^/]+)$/.exec(value) : null;
    const defs = isNode(this.root) ? this.root[this.#defsKey] : undefined;
    if (!m || !isNode(defs) || !(m[2]! in defs)) return this.fail(`${path}.$ref`, "must point at a schema in the root's $defs (#/$defs/<name>)");
    out["$ref"] = `#/$defs/${m[2]}`;
  }
}

/**
 * `{properties: P, anyOf: [A, B]}` means "P and (A or B)": the grammar generates one branch,
 * so P goes into each (`anyOf: [P+A, P+B]`), properties merged and `required` joined. Before,
 * the siblings were ignored while strict mode accepted the schema, and outputs broke it; a
 * branch that only adds `required` (valid JSON Schema) now reads as its parent. Returns the
 * node itself when there is nothing to distribute. Pure.
 */
export function distribute(node: Node): Node {
  const key = Array.isArray(node["anyOf"]) ? "anyOf" : Array.isArray(node["oneOf"]) ? "oneOf" : undefined;
  if (!key || !OBJECT_SIBLINGS.some((k) => k in node)) return node;
  const shared: Node = {};
  const rest: Node = {};
  for (const [k, v] of Object.entries(node)) {
    if (OBJECT_SIBLINGS.includes(k)) shared[k] = v;
    else if (k !== key) rest[k] = v;
  }
  const branches = (node[key] as unknown[]).map((branch) => {
    if (!isNode(branch)) return branch;
    const merged: Node = {...shared, ...branch};
    if (isNode(shared["properties"]) || isNode(branch["properties"])) merged["properties"] = {...(isNode(shared["properties"]) ? shared["properties"] : {}), ...(isNode(branch["properties"]) ? branch["properties"] : {})};
    const required = [...(Array.isArray(shared["required"]) ? shared["required"] : []), ...(Array.isArray(branch["required"]) ? branch["required"] : [])];
    if (required.length > 0) merged["required"] = [...new Set(required)];
    return merged;
  });
  return {...rest, [key]: branches};
}
