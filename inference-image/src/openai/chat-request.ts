import {z} from "zod";
import {invalidRequest, unsupportedParameter} from "../core/errors.js";
import type {ChatMessage, InferenceRequest, ResponseFormat, ToolFunction, Tools} from "../core/request.js";
import {toGrammarSchema} from "./json-schema.js";
import {common, parseWith, rejectUnsupported, samplingParams} from "./request-fields.js";

/** `/v1/chat/completions`: messages, tools and response formats into the internal request. Pure. */

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
  // Checked in toolChoiceOf, whose errors name the one shape that was meant.
  tool_choice: z.union([z.string(), z.looseObject({type: z.string()})]).nullish(),
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

/** Parses a `/v1/chat/completions` body. Throws ApiError(400) naming the offending field. */
export function parseChatRequest(body: unknown): InferenceRequest {
  const r = parseWith(chatSchema, body);
  rejectUnsupported(r);
  const messages = r.messages.map((m, i) => toChatMessage(m, i));
  const tools = toolsOf(r);
  if (typeof r.logprobs === "number") throw invalidRequest("Invalid value for 'logprobs': must be a boolean in chat completions (top_logprobs sets the alternatives).", "logprobs", "invalid_value");
  if (r.top_logprobs != null && r.logprobs !== true) throw invalidRequest("Invalid value for 'top_logprobs': logprobs must be true to use it.", "top_logprobs", "invalid_value");
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
  const choice = toolChoiceOf(r.tool_choice, defined.length > 0);
  if (choice.kind === "none") return undefined;
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
  if (choice.kind === "named") {
    if (!names.has(choice.name)) throw invalidRequest(`Invalid value for 'tool_choice.function.name': no tool is named '${choice.name}'.`, "tool_choice.function.name", "invalid_value");
    return {functions, choice};
  }
  // allowed_tools narrows what may be called; the others stay defined (and cacheable) for the client.
  const allowed = choice.allowed ? allowedFunctions(functions, choice.allowed) : functions;
  if (choice.kind === "auto") return {functions: allowed, choice: {kind: "auto", parallel: r.parallel_tool_calls ?? true}};
  return {functions: allowed, choice: {kind: "required"}};
}

type ToolChoice = {kind: "none"} | {kind: "auto" | "required"; allowed?: readonly string[]} | {kind: "named"; name: string};

const namedChoice = z.strictObject({type: z.literal("function"), function: z.strictObject({name: z.string()})});
const allowedChoice = z.strictObject({
  type: z.literal("allowed_tools"),
  allowed_tools: z.strictObject({
    mode: z.enum(["auto", "required"]),
    tools: z.array(z.looseObject({type: z.literal("function"), function: z.looseObject({name: z.string()})})).min(1, "must name at least one tool")
  })
});

/**
 * tool_choice in each of the spec's shapes: a mode, a named function, or allowed_tools (a
 * mode over a subset). An object is checked against the shape its `type` names, so an error
 * points at what is wrong in it rather than listing every alternative.
 */
function toolChoiceOf(choice: string | {type: string} | null | undefined, hasTools: boolean): ToolChoice {
  if (choice == null) return {kind: hasTools ? "auto" : "none"};
  if (typeof choice === "string") {
    if (choice === "none" || choice === "auto" || choice === "required") return {kind: choice};
    throw invalidRequest(`Invalid value for 'tool_choice': '${choice}'; expected 'none', 'auto', 'required', or an object.`, "tool_choice", "invalid_value");
  }
  if (choice.type === "function") {
    const named = parseWith(namedChoice, choice, "tool_choice");
    return {kind: "named", name: named.function.name};
  }
  if (choice.type === "allowed_tools") {
    const {allowed_tools: a} = parseWith(allowedChoice, choice, "tool_choice");
    return {kind: a.mode, allowed: a.tools.map((t) => t.function.name)};
  }
  if (choice.type === "custom") throw unsupportedParameter("tool_choice.type", "'custom' is not supported: this server has function tools only");
  throw invalidRequest(`Invalid value for 'tool_choice.type': '${choice.type}'; expected 'function' or 'allowed_tools'.`, "tool_choice.type", "invalid_value");
}

/** The functions allowed_tools names, each of which must be defined. */
function allowedFunctions(functions: readonly ToolFunction[], names: readonly string[]): ToolFunction[] {
  return names.map((name, i) => {
    const f = functions.find((fn) => fn.name === name);
    if (!f) throw invalidRequest(`Invalid value for 'tool_choice.allowed_tools.tools[${i}].function.name': no tool is named '${name}'.`, `tool_choice.allowed_tools.tools[${i}].function.name`, "invalid_value");
    return f;
  });
}

function responseFormat(f: z.infer<typeof chatSchema>["response_format"]): ResponseFormat {
  if (!f || f.type === "text") return TEXT;
  if (f.type === "json_object") return {kind: "json_object"};
  const strict = f.json_schema.strict ?? false;
  const {schema} = toGrammarSchema(f.json_schema.schema, strict, "response_format.json_schema.schema");
  return {kind: "json_schema", name: f.json_schema.name, schema, strict};
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

