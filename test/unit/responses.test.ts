import type {CompletionRecord} from "../../inference-image/src/core/record.js";
import {ResponseFormatter} from "../../inference-image/src/openai/responses.js";

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
});
