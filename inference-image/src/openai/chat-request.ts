import {z} from "zod";
import {invalidRequest, unsupportedParameter, ApiError} from "./errors.js";
import {toGrammarSchema} from "./json-schema.js";

/** Which public endpoint a request came through; part of cache keys and metric labels. */
export type Endpoint = "chat" | "completions" | "generate";

export interface ChatMessage {
  readonly role: "system" | "user" | "assistant" | "tool";
  readonly content: string;
  /** An assistant's calls (history). */
  readonly toolCalls?: readonly ToolCall[];
  /** A tool message: the call it answers. */
  readonly toolCallId?: string;
}

export interface ToolCall {
  readonly id: string;
  readonly name: string;
  /** The arguments as the client sent them: a JSON string. */
  readonly arguments: string;
}

/** A function the model may call, its parameters translated to the grammar's subset. */
export interface ToolFunction {
  readonly name: string;
  readonly description: string | undefined;
  readonly parameters: Readonly<Record<string, unknown>>;
}

/**
 * Tools offered, and how the reply must use them: `auto` (the model decides, in its own
 * function-calling syntax, parsed by node-llama-cpp), `required` (one call to any of them)
 * or `named` (one call to that function); the last two grammar-constrained to the parameters.
 */
export interface Tools {
  readonly functions: readonly ToolFunction[];
  readonly choice: {readonly kind: "auto"; readonly parallel: boolean} | {readonly kind: "required"} | {readonly kind: "named"; readonly name: string};
}

export type Prompt =
  | {readonly kind: "chat"; readonly messages: readonly ChatMessage[]}
  | {readonly kind: "text"; readonly text: string};

/** Every parameter that changes the output. Absent `seed` means "random each call". */
export interface SamplingParams {
  readonly temperature: number;
  readonly topP: number;
  readonly topK: number;
  readonly minP: number;
  readonly seed: number | undefined;
  /** Upper bound on generated tokens; `undefined` = until the slot's context is full. */
  readonly maxTokens: number | undefined;
  readonly stop: readonly string[];
  readonly presencePenalty: number;
  readonly frequencyPenalty: number;
  /** `logit_bias` as [token id, bias] pairs, sorted by id; -100 bans a token. */
  readonly logitBias: ReadonlyArray<readonly [number, number]>;
}

/**
 * What the output must be: free text, a JSON object, or JSON valid against a schema
 * (already translated to the grammar's subset, see json-schema.ts).
 */
export type ResponseFormat =
  | {readonly kind: "text"}
  | {readonly kind: "json_object"}
  | {readonly kind: "json_schema"; readonly name: string; readonly schema: Readonly<Record<string, unknown>>; readonly strict: boolean};

/** A validated request, independent of which OpenAI shape it arrived in. */
export interface InferenceRequest {
  readonly endpoint: Endpoint;
  readonly model: string | undefined;
  readonly prompt: Prompt;
  readonly params: SamplingParams;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly format: ResponseFormat;
  /** Choices to generate (`n`); at most the server's slots. */
  readonly n: number;
  /** Tools the reply must call; undefined for a plain reply. */
  readonly tools?: Tools;
  /** Log probabilities of the output tokens, with this many alternatives each; undefined: none. */
  readonly logprobs?: {readonly top: number};
}

const stop = z.union([z.string(), z.array(z.string()).max(4, "may hold at most 4 sequences")]).nullish();
const penalty = z.number().min(-2).max(2).nullish();

/** Fields every generating endpoint accepts, with OpenAI's ranges. */
const common = {
  model: z.string().min(1),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().min(0).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  seed: z.number().int().nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  stop,
  presence_penalty: penalty,
  frequency_penalty: penalty,
  stream: z.boolean().nullish(),
  // include_obfuscation pads chunks against side channels; nothing to pad here, nothing changes.
  stream_options: z.strictObject({include_usage: z.boolean().optional(), include_obfuscation: z.boolean().optional()}).nullish(),
  user: z.string().optional(),
  n: z.number().int().min(1).max(128).nullish(),
  logprobs: z.union([z.boolean(), z.number().int().min(0).max(5)]).nullish(),
  logit_bias: z.record(z.string().regex(/^\d+$/, "keys must be token ids"), z.number().min(-100).max(100)).nullish(),
  // Accepted and ignored: none changes the output. store/metadata ask OpenAI to keep the
  // completion for its dashboard (nothing is stored here); service_tier picks a price and
  // latency class; prompt_cache_key and safety_identifier are routing and abuse hints.
  store: z.boolean().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  service_tier: z.enum(["auto", "default", "flex", "scale", "priority"]).nullish(),
  prompt_cache_key: z.string().nullish(),
  safety_identifier: z.string().nullish(),
  verbosity: z.unknown().optional(),
  web_search_options: z.unknown().optional()
};

const contentPart = z.looseObject({type: z.string()});
const message = z.strictObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  name: z.string().optional(),
  tool_calls: z.unknown().optional(),
  tool_call_id: z.unknown().optional(),
  refusal: z.unknown().optional()
});

const chatSchema = z.strictObject({
  ...common,
  messages: z.array(message).min(1, "must contain at least one message"),
  max_completion_tokens: z.number().int().min(1).nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  tools: z
    .array(
      z.strictObject({
        type: z.literal("function"),
        function: z.strictObject({
          name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'"),
          description: z.string().optional(),
          parameters: z.record(z.string(), z.unknown()).optional(),
          strict: z.boolean().nullish()
        })
      })
    )
    .max(128, "may hold at most 128 tools")
    .nullish(),
  tool_choice: z
    .union([z.enum(["none", "auto", "required"]), z.strictObject({type: z.literal("function"), function: z.strictObject({name: z.string()})})])
    .nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  functions: z.unknown().optional(),
  function_call: z.unknown().optional(),
  response_format: z
    .discriminatedUnion("type", [
      z.strictObject({type: z.literal("text")}),
      z.strictObject({type: z.literal("json_object")}),
      z.strictObject({
        type: z.literal("json_schema"),
        json_schema: z.strictObject({
          name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "must be 1-64 letters, digits, '_' or '-'"),
          description: z.string().optional(),
          schema: z.record(z.string(), z.unknown()),
          strict: z.boolean().nullish()
        })
      })
    ])
    .nullish(),
  modalities: z.unknown().optional(),
  audio: z.unknown().optional(),
  // Predicted output only speeds generation up where it matches; the output is the model's either way.
  prediction: z.strictObject({type: z.literal("content"), content: z.union([z.string(), z.array(contentPart)])}).nullish(),
  reasoning_effort: z.unknown().optional()
});

const completionSchema = z.strictObject({
  ...common,
  prompt: z.union([z.string(), z.array(z.string())]),
  echo: z.unknown().optional(),
  best_of: z.unknown().optional(),
  suffix: z.unknown().optional()
});

const generateSchema = z.strictObject({
  prompt: z.string(),
  max_tokens: z.number().int().min(1).optional(),
  temperature: z.number().min(0).max(2).optional(),
  seed: z.number().int().optional()
});

/**
 * Known OpenAI fields this server does not implement. Each is accepted only with its
 * neutral value, so a client never gets a silently different behaviour.
 */
const unsupported: ReadonlyArray<[field: string, isNeutral: (v: unknown) => boolean, why: string]> = [
  ["functions", (v) => v == null, "is not supported: this server has no function calling"],
  ["function_call", (v) => v == null || v === "none", "is not supported: this server has no function calling"],
  ["modalities", (v) => v == null || (Array.isArray(v) && v.every((m) => m === "text")), "is not supported except [\"text\"]"],
  ["audio", (v) => v == null, "is not supported"],
  ["reasoning_effort", (v) => v == null, "is not supported"],
  ["verbosity", (v) => v == null, "is not supported: this model has no verbosity setting"],
  ["web_search_options", (v) => v == null, "is not supported: this server does not search the web"],
  ["echo", (v) => v == null || v === false, "is not supported"],
  ["best_of", (v) => v == null || v === 1, "must be 1"],
  ["suffix", (v) => v == null, "is not supported: this model has no infill"]
];

/** Parses a `/v1/chat/completions` body. Throws ApiError(400) naming the offending field. */
export function parseChatRequest(body: unknown): InferenceRequest {
  const r = parseWith(chatSchema, body);
  rejectUnsupported(r);
  const messages = r.messages.map((m, i) => toChatMessage(m, i));
  const tools = toolsOf(r);
  if (tools && (r.n ?? 1) > 1) throw unsupportedParameter("n", "must be 1 with tools");
  if (typeof r.logprobs === "number") throw invalidRequest("Invalid value for 'logprobs': must be a boolean in chat completions (top_logprobs sets the alternatives).", "logprobs", "invalid_value");
  if (r.top_logprobs != null && r.logprobs !== true) throw invalidRequest("Invalid value for 'top_logprobs': logprobs must be true to use it.", "top_logprobs", "invalid_value");
  if (r.logprobs === true && tools) throw unsupportedParameter("logprobs", "is not supported with tools");
  return {
    ...(tools ? {tools} : {}),
    ...(r.logprobs === true ? {logprobs: {top: r.top_logprobs ?? 0}} : {}),
    endpoint: "chat",
    model: r.model,
    prompt: {kind: "chat", messages},
    params: samplingParams(r, r.max_completion_tokens ?? r.max_tokens ?? undefined),
    stream: r.stream ?? false,
    includeUsage: r.stream_options?.include_usage ?? false,
    format: responseFormat(r.response_format),
    n: r.n ?? 1
  };
}

const TEXT: ResponseFormat = {kind: "text"};

/** The tools and tool choice, validated. `none` (or no tools) means a plain reply; `auto` is OpenAI's default with tools. */
function toolsOf(r: z.infer<typeof chatSchema>): Tools | undefined {
  const defined = r.tools ?? [];
  const choice = r.tool_choice ?? (defined.length > 0 ? "auto" : "none");
  if (choice === "none") return undefined;
  if (defined.length === 0) throw invalidRequest("Invalid value for 'tool_choice': tools must be given when tool_choice is not 'none'.", "tool_choice", "invalid_value");
  const names = new Set<string>();
  const functions = defined.map((t, i): ToolFunction => {
    const param = `tools[${i}].function`;
    if (names.has(t.function.name)) throw invalidRequest(`Invalid value for '${param}.name': '${t.function.name}' is defined twice.`, `${param}.name`, "invalid_value");
    names.add(t.function.name);
    const parameters = t.function.parameters ?? {type: "object", properties: {}};
    if (parameters["type"] !== "object") throw invalidRequest(`Invalid value for '${param}.parameters.type': a function's parameters must be a schema of type 'object'.`, `${param}.parameters.type`, "invalid_value");
    return {name: t.function.name, description: t.function.description, parameters: toGrammarSchema(parameters, t.function.strict ?? false, `${param}.parameters`).schema};
  });
  if (choice === "auto") return {functions, choice: {kind: "auto", parallel: r.parallel_tool_calls ?? true}};
  if (choice === "required") return {functions, choice: {kind: "required"}};
  if (!names.has(choice.function.name)) throw invalidRequest(`Invalid value for 'tool_choice.function.name': no tool is named '${choice.function.name}'.`, "tool_choice.function.name", "invalid_value");
  return {functions, choice: {kind: "named", name: choice.function.name}};
}

function responseFormat(f: z.infer<typeof chatSchema>["response_format"]): ResponseFormat {
  if (!f || f.type === "text") return TEXT;
  if (f.type === "json_object") return {kind: "json_object"};
  const strict = f.json_schema.strict ?? false;
  const {schema} = toGrammarSchema(f.json_schema.schema, strict, "response_format.json_schema.schema");
  return {kind: "json_schema", name: f.json_schema.name, schema, strict};
}

/** Parses a `/v1/completions` body. Without `max_tokens`, 16 tokens, as OpenAI does. */
export function parseCompletionRequest(body: unknown): InferenceRequest {
  const r = parseWith(completionSchema, body);
  rejectUnsupported(r);
  let text: string;
  if (typeof r.logprobs === "boolean") throw invalidRequest("Invalid value for 'logprobs': must be an integer 0-5 in completions (the alternatives per token).", "logprobs", "invalid_value");
  if (typeof r.prompt === "string") text = r.prompt;
  else if (r.prompt.length === 1 && r.prompt[0] !== undefined) text = r.prompt[0];
  else throw unsupportedParameter("prompt", "must be a string or an array of exactly one string (batched prompts are not supported)");
  return {
    ...(typeof r.logprobs === "number" ? {logprobs: {top: r.logprobs}} : {}),
    endpoint: "completions",
    model: r.model,
    prompt: {kind: "text", text},
    params: samplingParams(r, r.max_tokens ?? 16),
    stream: r.stream ?? false,
    includeUsage: r.stream_options?.include_usage ?? false,
    format: TEXT,
    n: r.n ?? 1
  };
}

/** Parses the seed's `POST /generate {prompt}` body: a plain completion, greedy unless told otherwise. */
export function parseGenerateRequest(body: unknown): InferenceRequest {
  const r = parseWith(generateSchema, body);
  return {
    endpoint: "generate",
    model: undefined,
    prompt: {kind: "text", text: r.prompt},
    params: samplingParams({temperature: r.temperature ?? 0, seed: r.seed}, r.max_tokens ?? 256),
    stream: false,
    includeUsage: false,
    format: TEXT,
    n: 1
  };
}

interface SamplingFields {
  temperature?: number | null | undefined;
  top_p?: number | null | undefined;
  top_k?: number | null | undefined;
  min_p?: number | null | undefined;
  seed?: number | null | undefined;
  stop?: string | string[] | null | undefined;
  presence_penalty?: number | null | undefined;
  frequency_penalty?: number | null | undefined;
  logit_bias?: Record<string, number> | null | undefined;
}

/** OpenAI's defaults: temperature 1, top_p 1, no penalties; top_k 0 and min_p 0 disable those samplers. */
function samplingParams(r: SamplingFields, maxTokens: number | undefined): SamplingParams {
  return {
    temperature: r.temperature ?? 1,
    topP: r.top_p ?? 1,
    topK: r.top_k ?? 0,
    minP: r.min_p ?? 0,
    seed: r.seed ?? undefined,
    maxTokens,
    stop: r.stop == null ? [] : (typeof r.stop === "string" ? [r.stop] : r.stop).filter((s) => s.length > 0),
    presencePenalty: r.presence_penalty ?? 0,
    frequencyPenalty: r.frequency_penalty ?? 0,
    logitBias: Object.entries(r.logit_bias ?? {})
      .map(([token, bias]) => [Number(token), bias] as const)
      .filter(([, bias]) => bias !== 0)
      .sort((a, b) => a[0] - b[0])
  };
}

const toolCallsSchema = z.array(
  z.strictObject({id: z.string().min(1), type: z.literal("function"), function: z.strictObject({name: z.string().min(1), arguments: z.string()})})
);

function toChatMessage(m: z.infer<typeof message>, index: number): ChatMessage {
  const param = `messages[${index}]`;
  if (m.role === "function") throw unsupportedParameter(`${param}.role`, "'function' (the deprecated function-calling API) is not supported: use tools and 'tool' messages");
  let content: string;
  if (typeof m.content === "string") content = m.content;
  else if (m.content == null) content = "";
  else {
    content = m.content
      .map((part, j) => {
        if (part.type !== "text" || typeof part["text"] !== "string") {
          throw unsupportedParameter(`${param}.content[${j}].type`, `'${part.type}' is not supported: this model accepts text only`);
        }
        return part["text"];
      })
      .join("");
  }
  if (m.role === "tool") {
    if (typeof m.tool_call_id !== "string" || m.tool_call_id === "") throw invalidRequest(`Missing required parameter: '${param}.tool_call_id'.`, `${param}.tool_call_id`, "missing_required_parameter");
    return {role: "tool", content, toolCallId: m.tool_call_id};
  }
  if (m.tool_calls != null) {
    if (m.role !== "assistant") throw invalidRequest(`Invalid value for '${param}.tool_calls': only assistant messages carry tool calls.`, `${param}.tool_calls`, "invalid_value");
    const calls = toolCallsSchema.safeParse(m.tool_calls);
    if (!calls.success) throw invalidRequest(`Invalid value for '${param}.tool_calls': ${calls.error.issues[0]!.message} at ${calls.error.issues[0]!.path.join(".")}.`, `${param}.tool_calls`, "invalid_value");
    return {role: "assistant", content, toolCalls: calls.data.map((c) => ({id: c.id, name: c.function.name, arguments: c.function.arguments}))};
  }
  return {role: m.role === "developer" ? "system" : m.role, content};
}

function rejectUnsupported(r: Record<string, unknown>): void {
  for (const [field, isNeutral, why] of unsupported) {
    if (field in r && !isNeutral(r[field])) throw unsupportedParameter(field, why);
  }
}

function parseWith<T extends z.ZodType>(schema: T, body: unknown): z.infer<T> {
  if (!isObject(body)) throw invalidRequest("The request body must be a JSON object.", null, "invalid_body");
  // reportInput: tells a missing field (input undefined) from a wrong one in the issue.
  const result = schema.safeParse(body, {reportInput: true});
  if (result.success) return result.data;
  throw toApiError(result.error);
}

/** The first issue decides the message; its path becomes OpenAI's `param`. */
function toApiError(error: z.ZodError): ApiError {
  const issue = error.issues[0]!;
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0] ?? "";
    const prefix = issue.path.length > 0 ? `${formatPath(issue.path)}.` : "";
    return invalidRequest(`Unrecognized request argument supplied: ${prefix}${key}`, `${prefix}${key}`, "unknown_parameter");
  }
  const param = formatPath(issue.path);
  if (issue.input === undefined) {
    return invalidRequest(`Missing required parameter: '${param}'.`, param, "missing_required_parameter");
  }
  const message = issue.code === "invalid_union" ? unionMessage(issue) : issue.message;
  return invalidRequest(`Invalid value for '${param}': ${message}.`, param, "invalid_value");
}

/**
 * A union fails as a whole; the useful reason is the branch that matched the input's type
 * but broke a rule (e.g. `stop` as an array of 5), else the list of accepted types.
 */
function unionMessage(issue: z.core.$ZodIssueInvalidUnion): string {
  const specific = issue.errors.flat().find((i) => i.code !== "invalid_type");
  if (specific) return specific.message;
  const got = issue.input === null ? "null" : Array.isArray(issue.input) ? "array" : typeof issue.input;
  const expected = [...new Set(issue.errors.flat().map((i) => (i.code === "invalid_type" ? i.expected : i.code)))];
  return `expected ${expected.join(" or ")}, received ${got}`;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`)).join("");
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
