import {readFileSync} from "node:fs";
import {resolve} from "node:path";
import {Ajv2020, type ValidateFunction} from "ajv/dist/2020.js";
import {REPO_ROOT} from "../../dev/paths.js";

/**
 * Checks what the server sends against OpenAI's published OpenAPI document
 * (../shared/openai-openapi): every JSON body and every stream chunk, as a `fetch` that
 * the `openai` client is given, so the responses it consumes itself are checked too.
 */

const DOCUMENT = resolve(REPO_ROOT, "../shared/openai-openapi/openapi.json");

type Json = Record<string, unknown>;

/** The document, with the one quirk its README names: OpenAI's own legacy stream sends these nulls. */
function loadDocument(): Json {
  const doc = JSON.parse(readFileSync(DOCUMENT, "utf8")) as {components: {schemas: Record<string, Json>}};
  const completion = doc.components.schemas["CreateCompletionResponse"] as {properties: Record<string, Json>};
  const choice = (completion.properties["choices"] as {items: {properties: Record<string, Json>}}).items.properties;
  choice["finish_reason"] = {anyOf: [choice["finish_reason"]!, {type: "null"}]};
  completion.properties["usage"] = {anyOf: [completion.properties["usage"]!, {type: "null"}]};
  return withNullable(doc) as Json;
}

/**
 * The document is OpenAPI 3.1 but keeps 3.0's `nullable: true` in places: beside a `$ref`
 * with no `type` (the stream chunk's `usage`), which Ajv refuses to compile, and beside an
 * `enum` without null (the chunk's `finish_reason`), which Ajv's `nullable` still rejects.
 * Each reads as "this, or null", as its authors meant.
 */
function withNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withNullable);
  if (node === null || typeof node !== "object") return node;
  const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, withNullable(v)])) as Json;
  if (out["nullable"] !== true) return out;
  const rest = {...out};
  delete rest["nullable"];
  delete rest["description"];
  return {...("description" in out ? {description: out["description"]} : {}), anyOf: [rest, {type: "null"}]};
}

export interface Violation {
  readonly url: string;
  readonly schema: string;
  readonly errors: unknown;
  readonly value: unknown;
}

export class OpenApiChecker {
  readonly #ajv = new Ajv2020({strict: false, allErrors: true, validateFormats: false});
  readonly #validators = new Map<string, ValidateFunction>();
  readonly #pending: Array<Promise<void>> = [];
  /** Schema-checked bodies and chunks so far, so a test can show it checked something. */
  checked = 0;
  readonly violations: Violation[] = [];

  constructor() {
    this.#ajv.addSchema(loadDocument(), "openapi");
  }

  /** A fetch that checks each response it returns against the schema for its path. */
  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const res = await fetch(input, init);
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    this.#pending.push(this.#check(url, res.clone()));
    return res;
  };

  /** Waits for the responses still being read, then returns what broke the schemas. */
  async settle(): Promise<Violation[]> {
    await Promise.all(this.#pending.splice(0));
    return this.violations.splice(0);
  }

  async #check(url: string, res: Response): Promise<void> {
    const text = await res.text();
    const path = new URL(url).pathname.replace(/^\/v1/, "");
    if (!res.ok) return this.#validate(url, "ErrorResponse", JSON.parse(text));
    const [body, chunk] = SCHEMAS[path] ?? [];
    if (!body || !chunk) return;
    if (!(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) return this.#validate(url, body, JSON.parse(text));
    for (const line of text.split("\n")) {
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      const value = JSON.parse(line.slice(6)) as Json;
      // A stream's error event is OpenAI's error object, not a chunk.
      this.#validate(url, "error" in value ? "ErrorResponse" : chunk, value);
    }
  }

  #validate(url: string, schema: string, value: unknown): void {
    let validate = this.#validators.get(schema);
    if (!validate) {
      validate = this.#ajv.getSchema(`openapi#/components/schemas/${schema}`)!;
      this.#validators.set(schema, validate);
    }
    this.checked++;
    if (!validate(value)) this.violations.push({url, schema, errors: validate.errors, value});
  }
}

/** Path: [body schema, stream chunk schema]. */
const SCHEMAS: Record<string, readonly [string, string]> = {
  "/chat/completions": ["CreateChatCompletionResponse", "CreateChatCompletionStreamResponse"],
  "/completions": ["CreateCompletionResponse", "CreateCompletionResponse"],
  "/embeddings": ["CreateEmbeddingResponse", "CreateEmbeddingResponse"],
  "/models": ["ListModelsResponse", "ListModelsResponse"]
};
