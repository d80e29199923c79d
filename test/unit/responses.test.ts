import type {CompletionRecord} from "../../inference-image/src/core/record.js";
import type {Tools} from "../../inference-image/src/core/request.js";
import type {TokenLogprob} from "../../inference-image/src/core/generation.js";
import {logprobsByChunk, ResponseFormatter, totalOf} from "../../inference-image/src/openai/responses.js";

const record: CompletionRecord = {chunks: ["Once", " upon"], finishReason: "length", promptTokens: 3, completionTokens: 2};

describe("ResponseFormatter", () => {
  it("renders a chat completion body", () => {
    const body = new ResponseFormatter("chat", "tiny", "abc", 1700000000).body(record);
    expect(body).toEqual({
      id: "chatcmpl-abc",
      object: "chat.completion",
      created: 1700000000,
      model: "tiny",
      choices: [{index: 0, message: {role: "assistant", content: "Once upon", refusal: null}, logprobs: null, finish_reason: "length"}],
      usage: {prompt_tokens: 3, completion_tokens: 2, total_tokens: 5, prompt_tokens_details: {cached_tokens: 0}}
    });
  });

  it("renders a chat stream: role first, text deltas, finish_reason, then usage when asked", () => {
    const chunks = new ResponseFormatter("chat", "tiny", "abc", 1, true).allChunks(record);
    const deltas = chunks.map((c) => (c["choices"] as Array<{delta: unknown; finish_reason: unknown}>)[0]);
    expect(deltas).toEqual([
      {index: 0, delta: {role: "assistant", content: ""}, logprobs: null, finish_reason: null},
      {index: 0, delta: {content: "Once"}, logprobs: null, finish_reason: null},
      {index: 0, delta: {content: " upon"}, logprobs: null, finish_reason: null},
      {index: 0, delta: {}, logprobs: null, finish_reason: "length"},
      undefined
    ]);
    expect(chunks.at(-1)).toMatchObject({choices: [], usage: {total_tokens: 5}});
    expect(chunks[0]).toMatchObject({object: "chat.completion.chunk", usage: null});
  });

  it("renders legacy completions with text choices and no usage chunk unless asked", () => {
    const f = new ResponseFormatter("completions", "tiny", "x", 1);
    expect(f.body(record)).toMatchObject({id: "cmpl-x", object: "text_completion", choices: [{text: "Once upon", finish_reason: "length"}]});
    const chunks = f.allChunks(record);
    expect(chunks).toHaveLength(3);
    expect(chunks.every((c) => !("usage" in c))).toBe(true);
  });

  it("keeps the seed's /generate shape", () => {
    expect(new ResponseFormatter("generate", "tiny", "x", 1).body(record)).toEqual({result: "Once upon"});
  });

  const required: Tools = {functions: [{name: "f", description: undefined, parameters: {type: "object", properties: {a: {type: "number"}}}}], choice: {kind: "required"}};
  const deltasOf = (chunks: Record<string, unknown>[]) => chunks.map((c) => (c["choices"] as Array<{index: number; delta: Record<string, unknown>}>)[0]);

  it("opens a tool-call stream with content null, as OpenAI does", () => {
    const chunks = new ResponseFormatter("chat", "tiny", "abc", 1, false, required).allChunks({...record, chunks: ['{"a": 1}'], finishReason: "stop"});
    expect(deltasOf(chunks)[0]?.delta).toEqual({role: "assistant", content: null});
    expect(deltasOf(chunks).at(-1)).toMatchObject({finish_reason: "tool_calls"});
  });

  it("streams each choice's tool call on its own index with its own id", () => {
    const f = new ResponseFormatter("chat", "tiny", "abc", 1, false, required);
    const zero = [...f.text('{"a": '), ...f.text("1}")];
    const one = [...f.text('{"a"', 1), ...f.text(": 2}", 1)];
    const calls = (chunks: Record<string, unknown>[]) => deltasOf(chunks).map((d) => d?.delta["tool_calls"]);
    expect(deltasOf(one).every((d) => d?.index === 1)).toBe(true);
    expect(calls(zero)[0]).toEqual([{index: 0, id: "call_abc", type: "function", function: {name: "f", arguments: ""}}]);
    expect(calls(one)[0]).toEqual([{index: 0, id: "call_abc_c1", type: "function", function: {name: "f", arguments: ""}}]);
    const args = (chunks: Record<string, unknown>[]) =>
      calls(chunks)
        .map((c) => ((c as Array<{function: {arguments: string}}>)[0]!.function.arguments))
        .join("");
    expect([args(zero), args(one)]).toEqual(['{"a": 1}', '{"a": 2}']);
  });

  const lp = (token: string, logprob = -0.5): TokenLogprob => ({token, logprob, bytes: [...Buffer.from(token)], top: []});
  const withLogprobs: CompletionRecord = {...record, chunks: ["Once", " upon a"], logprobs: [lp("Once"), lp(" upon"), lp(" a")]};
  const logprobsOf = (chunks: Record<string, unknown>[]) => chunks.map((c) => (c["choices"] as Array<{logprobs: unknown}>)[0]?.logprobs);

  it("replays a stream's logprobs chunk by chunk, each token with the piece its text starts in, none held for the end", () => {
    const chunks = new ResponseFormatter("chat", "tiny", "abc", 1).allChunks(withLogprobs);
    expect(logprobsOf(chunks)).toEqual([
      null,
      {content: [{token: "Once", logprob: -0.5, bytes: [...Buffer.from("Once")], top_logprobs: []}], refusal: null},
      {content: [" upon", " a"].map((token) => ({token, logprob: -0.5, bytes: [...Buffer.from(token)], top_logprobs: []})), refusal: null},
      null
    ]);
    // Legacy offsets run on across chunks.
    const legacy = new ResponseFormatter("completions", "tiny", "x", 1).allChunks(withLogprobs);
    expect(logprobsOf(legacy).map((l) => (l as {text_offset: number[]} | null)?.text_offset)).toEqual([[0], [4, 9], undefined]);
  });

  it("puts logprobs on the closing chunk when they did not come with the text; a tool call's wait for it", () => {
    const f = new ResponseFormatter("chat", "tiny", "abc", 1);
    const live = [...f.text("Once"), ...f.closing(withLogprobs)];
    expect(logprobsOf(live).at(-1)).toMatchObject({content: [{token: "Once"}, {token: " upon"}, {token: " a"}]});
    const call = new ResponseFormatter("chat", "tiny", "abc", 1, false, required);
    const chunks = [...call.text('{"a": ', 0, [lp('{"'), lp("a"), lp('": ')]), ...call.text("1}", 0, [lp("1}")]), ...call.closing({...record, finishReason: "stop"})];
    expect(logprobsOf(chunks).slice(0, -1).every((l) => l === null)).toBe(true);
    expect((logprobsOf(chunks).at(-1) as {content: Array<{token: string}>}).content.map((t) => t.token).join("")).toBe('{"a": 1}');
  });

  it("shares logprobs out among chunks by where each token's text starts; leftovers go last", () => {
    expect(logprobsByChunk(["Once up", "on"], [lp("Once"), lp(" upon")]).map((p) => p.map((t) => t.token))).toEqual([["Once", " upon"], []]);
    expect(logprobsByChunk(["a", "b"], [lp("a"), lp("b"), lp("c")]).map((p) => p.map((t) => t.token))).toEqual([["a"], ["b", "c"]]);
    expect(logprobsByChunk([], [lp("a")])).toEqual([]);
  });

  it("counts each prompt of a batch once in usage", () => {
    const r = (promptTokens: number, completionTokens: number) => ({promptTokens, completionTokens, cachedTokens: 1});
    // Two prompts, n = 2: choices 0-1 answer the first, 2-3 the second.
    expect(totalOf([r(3, 1), r(3, 2), r(5, 4), r(5, 8)], 2)).toEqual({promptTokens: 8, cachedTokens: 2, completionTokens: 15});
    expect(totalOf([r(3, 1), r(3, 2)])).toEqual({promptTokens: 3, cachedTokens: 1, completionTokens: 3});
  });
});
