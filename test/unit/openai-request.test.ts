import {ApiError} from "../../inference-image/src/core/errors.js";
import {parseChatRequest} from "../../inference-image/src/openai/chat-request.js";
import {parseCompletionRequest, parseGenerateRequest} from "../../inference-image/src/openai/completion-request.js";

function errorOf(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error("expected an ApiError");
}

const chat = {model: "m", messages: [{role: "user", content: "hi"}]};

describe("chat request parsing", () => {
  it("normalizes a full request with OpenAI's defaults", () => {
    const r = parseChatRequest({
      ...chat,
      messages: [
        {role: "developer", content: "be brief"},
        {role: "user", content: [{type: "text", text: "a"}, {type: "text", text: "b"}]}
      ],
      stop: "\n",
      stream: true,
      stream_options: {include_usage: true},
      max_completion_tokens: 7,
      user: "someone"
    });
    expect(r).toEqual({
      endpoint: "chat",
      model: "m",
      prompt: {kind: "chat", messages: [{role: "system", content: "be brief"}, {role: "user", content: "ab"}]},
      params: {temperature: 1, topP: 1, topK: 0, minP: 0, seed: undefined, maxTokens: 7, stop: ["\n"], presencePenalty: 0, frequencyPenalty: 0, logitBias: []},
      stream: true,
      includeUsage: true,
      format: {kind: "text"},
      n: 1
    });
  });

  it.each([
    [{...chat, n: 0}, "n", "invalid_value"],
    [{...chat, tool_choice: "required"}, "tool_choice", "invalid_value"],
    [{...chat, logprobs: 2}, "logprobs", "invalid_value"],
    [{...chat, response_format: {type: "xml"}}, "response_format.type", "invalid_value"],
    [{...chat, response_format: {type: "json_schema", json_schema: {name: "x", strict: true, schema: {type: "string", pattern: "^(?<=a)"}}}}, "response_format.json_schema.schema.pattern", "invalid_json_schema"],
    [{...chat, response_format: {type: "json_schema", json_schema: {name: "x", schema: {}}}}, "response_format.json_schema.schema", "invalid_json_schema"],
    [{...chat, frobnicate: 1}, "frobnicate", "unknown_parameter"],
    [{...chat, temperature: "hot"}, "temperature", "invalid_value"],
    [{...chat, temperature: 2.5}, "temperature", "invalid_value"],
    [{...chat, max_tokens: 0}, "max_tokens", "invalid_value"],
    [{...chat, stop: ["a", "b", "c", "d", "e"]}, "stop", "invalid_value"],
    [{...chat, messages: []}, "messages", "invalid_value"],
    [{model: "m"}, "messages", "missing_required_parameter"],
    [{messages: chat.messages}, "model", "missing_required_parameter"],
    [{...chat, messages: [{role: "robot", content: "x"}]}, "messages[0].role", "invalid_value"],
    [{...chat, messages: [{role: "user", content: [{type: "image_url", image_url: {url: "x"}}]}]}, "messages[0].content[0].type", "unsupported_parameter"],
    [{...chat, messages: [{role: "function", content: "x", name: "f"}]}, "messages[0].role", "unsupported_parameter"]
  ])("rejects %j naming '%s'", (body, param, code) => {
    const e = errorOf(() => parseChatRequest(body));
    expect(e.status).toBe(400);
    expect(e.param).toBe(param);
    expect(e.code).toBe(code);
    expect(e.message).toContain(param.split(/[.[]/)[0]!);
  });

  it("takes spec 2.3.0's newer shapes: null moderation and prompt-cache hints", () => {
    expect(() => parseChatRequest({...chat, moderation: null, prompt_cache_retention: null, prompt_cache_options: null})).not.toThrow();
    expect(() => parseChatRequest({...chat, prompt_cache_retention: "24h"})).not.toThrow();
    expect(errorOf(() => parseChatRequest({...chat, moderation: {model: "omni"}})).param).toBe("moderation");
  });

  it("answers stream_options without a stream as OpenAI does: 400", () => {
    const e = errorOf(() => parseChatRequest({...chat, stream_options: {include_usage: true}}));
    expect([e.status, e.param]).toEqual([400, "stream_options"]);
    expect(() => parseChatRequest({...chat, stream: false, stream_options: null})).not.toThrow();
  });

  const tool = (name: string) => ({type: "function", function: {name, parameters: {type: "object", properties: {x: {type: "string"}}}}});

  it("narrows the tools to allowed_tools, in its mode", () => {
    const body = {...chat, tools: [tool("a"), tool("b"), tool("c")]};
    const auto = parseChatRequest({...body, tool_choice: {type: "allowed_tools", allowed_tools: {mode: "auto", tools: [{type: "function", function: {name: "b"}}]}}});
    expect(auto.tools?.functions.map((f) => f.name)).toEqual(["b"]);
    expect(auto.tools?.choice).toEqual({kind: "auto", parallel: true});
    const required = parseChatRequest({...body, tool_choice: {type: "allowed_tools", allowed_tools: {mode: "required", tools: [{type: "function", function: {name: "c"}}, {type: "function", function: {name: "a"}}]}}});
    expect(required.tools?.functions.map((f) => f.name)).toEqual(["c", "a"]);
    expect(required.tools?.choice).toEqual({kind: "required"});
  });

  it.each([
    [{type: "allowed_tools", allowed_tools: {mode: "auto", tools: [{type: "function", function: {name: "zzz"}}]}}, "tool_choice.allowed_tools.tools[0].function.name", "no tool is named 'zzz'"],
    [{type: "allowed_tools", allowed_tools: {mode: "sometimes", tools: [{type: "function", function: {name: "a"}}]}}, "tool_choice.allowed_tools.mode", "Invalid value"],
    [{type: "allowed_tools", allowed_tools: {tools: []}}, "tool_choice.allowed_tools.mode", "Missing required parameter"],
    [{type: "function", function: {}}, "tool_choice.function.name", "Missing required parameter"],
    [{type: "custom", custom: {name: "a"}}, "tool_choice.type", "function tools only"],
    [{type: "toolbox"}, "tool_choice.type", "'function' or 'allowed_tools'"],
    ["sometimes", "tool_choice", "'none', 'auto', 'required'"]
  ])("names what is wrong in tool_choice %j", (choice, param, text) => {
    const e = errorOf(() => parseChatRequest({...chat, tools: [tool("a")], tool_choice: choice}));
    expect(e.param).toBe(param);
    expect(e.message).toContain(text);
  });

  it("takes n > 1 and logprobs with tools", () => {
    const r = parseChatRequest({...chat, tools: [tool("a")], tool_choice: "required", n: 3, logprobs: true, top_logprobs: 2});
    expect(r).toMatchObject({n: 3, logprobs: {top: 2}, tools: {choice: {kind: "required"}}});
  });

  it("accepts neutral values of unsupported fields", () => {
    expect(() => parseChatRequest({...chat, n: 1, tools: [], logprobs: false, response_format: {type: "text"}, store: false})).not.toThrow();
  });

  it("rejects a body that is not an object", () => {
    expect(errorOf(() => parseChatRequest([chat])).code).toBe("invalid_body");
    expect(errorOf(() => parseChatRequest(null)).code).toBe("invalid_body");
  });
});

describe("completion request parsing", () => {
  it("defaults max_tokens to 16 like OpenAI and accepts a one-element prompt array", () => {
    const r = parseCompletionRequest({model: "m", prompt: ["Once"], temperature: 0, seed: 3});
    expect(r.prompt).toEqual({kind: "text", text: "Once"});
    expect(r.params).toMatchObject({maxTokens: 16, temperature: 0, seed: 3});
  });

  it("takes every prompt shape the spec allows: token ids, and batches of strings or ids", () => {
    expect(parseCompletionRequest({model: "m", prompt: [1, 2, 3]}).prompt).toEqual({kind: "tokens", tokens: [1, 2, 3]});
    expect(parseCompletionRequest({model: "m", prompt: [1, 2, 3]}).batch).toBeUndefined();
    const batch = parseCompletionRequest({model: "m", prompt: ["a", "b"]});
    expect(batch.batch).toEqual([
      {kind: "text", text: "a"},
      {kind: "text", text: "b"}
    ]);
    expect(batch.prompt).toEqual({kind: "text", text: "a"});
    expect(parseCompletionRequest({model: "m", prompt: [[1], [2, 3]]}).batch).toEqual([
      {kind: "tokens", tokens: [1]},
      {kind: "tokens", tokens: [2, 3]}
    ]);
  });

  it.each([
    [{model: "m", prompt: []}, "prompt"],
    [{model: "m", prompt: [-1]}, "prompt[0]"],
    [{model: "m", prompt: [[]]}, "prompt[0]"],
    [{model: "m", prompt: "a", echo: true}, "echo"],
    [{model: "m", prompt: "a", stream_options: {include_usage: true}}, "stream_options"]
  ])("rejects %j naming '%s'", (body, param) => {
    const e = errorOf(() => parseCompletionRequest(body));
    expect(e.status).toBe(400);
    expect(e.param).toBe(param);
  });
});

describe("/generate request parsing", () => {
  it("is a greedy completion without a model field", () => {
    const r = parseGenerateRequest({prompt: "Once"});
    expect(r).toMatchObject({endpoint: "generate", model: undefined, prompt: {kind: "text", text: "Once"}});
    expect(r.params.temperature).toBe(0);
  });

  it("names a missing prompt", () => {
    expect(errorOf(() => parseGenerateRequest({})).param).toBe("prompt");
  });
});
