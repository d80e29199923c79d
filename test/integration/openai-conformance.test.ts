import OpenAI from "openai";
import {TINY_MODEL_NAME} from "../../dev/paths.js";
import {useCheckedServer} from "../helpers/checked-server.js";
import {countTokens, tokenIds} from "../helpers/tokenize.js";

/**
 * The request and stream shapes of OpenAI's spec 2.3.0, through the official `openai`
 * client (6.49.0: the newest that runs on Node 20; 7.x needs Node 22) against the real
 * server on the tiny model. Every body and chunk the server sends, including those the
 * client consumes itself, is checked against OpenAI's OpenAPI document: 0 violations.
 */
describe("OpenAI conformance: tools with n and logprobs, prefill, legacy prompts, newer shapes", () => {
  const api = useCheckedServer({PARALLEL_SLOTS: "4"}, {everyTestChecks: true});

  const model = TINY_MODEL_NAME;
  const weather = {
    type: "function" as const,
    function: {name: "get_weather", parameters: {type: "object", properties: {city: {type: "string", maxLength: 12}, days: {type: "integer", minimum: 1, maximum: 14}}, required: ["city", "days"], additionalProperties: false}, strict: true}
  };
  const time = {type: "function" as const, function: {name: "get_time", parameters: {type: "object", properties: {zone: {type: "string", maxLength: 8}}, required: ["zone"], additionalProperties: false}, strict: true}};
  const ask = [{role: "user" as const, content: "What is the weather in Paris?"}];

  it("n > 1 with a forced tool call: every choice is its own call, streamed or not", async () => {
    const res = await api.client.chat.completions.create({model, messages: ask, tools: [weather], tool_choice: "required", n: 3, temperature: 1, seed: 11, max_tokens: 80});
    expect(res.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    const ids = res.choices.map((c) => c.message.tool_calls?.[0]?.id);
    expect(new Set(ids).size).toBe(3);
    for (const c of res.choices) {
      expect(c.finish_reason).toBe("tool_calls");
      expect(c.message.content).toBeNull();
      const call = c.message.tool_calls![0]!;
      expect(call.type === "function" && call.function.name).toBe("get_weather");
      const args = JSON.parse(call.type === "function" ? call.function.arguments : "") as {city: string; days: number};
      expect(Object.keys(args).sort()).toEqual(["city", "days"]);
      // The strict parameters' bounds hold at temperature 1.
      expect(Number.isInteger(args.days) && args.days >= 1 && args.days <= 14 && args.city.length <= 12).toBe(true);
    }

    // The SDK's stream helper assembles each choice from its own deltas.
    const stream = api.client.chat.completions.stream({model, messages: ask, tools: [weather], tool_choice: "required", n: 2, temperature: 1, seed: 11, max_tokens: 80});
    const final = await stream.finalChatCompletion();
    expect(final.choices).toHaveLength(2);
    for (const c of final.choices) {
      expect(c.finish_reason).toBe("tool_calls");
      expect(c.message.content).toBeNull();
      expect(JSON.parse(c.message.tool_calls![0]!.function.arguments)).toEqual(expect.objectContaining({city: expect.any(String)}));
    }
    expect(final.choices[0]!.message.tool_calls![0]!.id).not.toBe(final.choices[1]!.message.tool_calls![0]!.id);
  });

  it("n > 1 with tool_choice auto: each choice is a call or text of its own", async () => {
    const res = await api.client.chat.completions.create({model, messages: ask, tools: [weather, time], n: 2, temperature: 1, seed: 5, max_tokens: 24});
    expect(res.choices).toHaveLength(2);
    for (const c of res.choices) {
      // The tiny model rarely calls on its own; a text reply and a call are both answers.
      if (c.message.tool_calls?.length) expect(c.finish_reason).toBe("tool_calls");
      else expect(typeof c.message.content).toBe("string");
    }
  });

  it("logprobs with a tool call: the tokens spell the call's arguments", async () => {
    const res = await api.client.chat.completions.create({model, messages: ask, tools: [weather], tool_choice: {type: "function", function: {name: "get_weather"}}, logprobs: true, top_logprobs: 2, temperature: 0, max_tokens: 80});
    const choice = res.choices[0]!;
    const call = choice.message.tool_calls![0]!;
    const content = choice.logprobs!.content!;
    expect(content.length).toBeGreaterThan(0);
    expect(content.every((t) => t.logprob <= 0 && t.top_logprobs.length === 2)).toBe(true);
    expect(content.map((t) => t.token).join("").trim()).toBe(call.type === "function" ? call.function.arguments : "");
  });

  it("streamed logprobs: each chunk carries its own (chat and legacy), as the body has them; a streamed call's come with its end", async () => {
    const chat = {model, messages: [{role: "user" as const, content: "Once upon a time"}], max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 2};
    const body = await api.client.chat.completions.create(chat, {headers: {"cache-control": "no-store"}});
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of await api.client.chat.completions.create({...chat, stream: true}, {headers: {"cache-control": "no-store"}})) chunks.push(c);
    const withText = chunks.filter((c) => c.choices[0]?.delta.content);
    expect(withText.length).toBeGreaterThan(1);
    for (const c of withText) expect(c.choices[0]!.logprobs!.content!.map((t) => t.token).join("")).toBe(c.choices[0]!.delta.content);
    expect(chunks.flatMap((c) => c.choices[0]?.logprobs?.content ?? []).map((t) => t.token)).toEqual(body.choices[0]!.logprobs!.content!.map((t) => t.token));

    const legacy: OpenAI.Completion[] = [];
    for await (const c of await api.client.completions.create({model, prompt: "Once upon a time", max_tokens: 8, temperature: 0, logprobs: 2, stream: true}, {headers: {"cache-control": "no-store"}})) legacy.push(c);
    for (const c of legacy.filter((l) => l.choices[0]!.text !== "")) expect(c.choices[0]!.logprobs!.tokens!.join("")).toBe(c.choices[0]!.text);

    // A forced call's deltas are not text: its logprobs come with the chunk that ends it.
    const call: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of await api.client.chat.completions.create({model, messages: ask, tools: [weather], tool_choice: "required", logprobs: true, temperature: 0, max_tokens: 80, stream: true}, {headers: {"cache-control": "no-store"}})) call.push(c);
    const ends = call.filter((c) => c.choices[0]?.finish_reason);
    expect(ends).toHaveLength(1);
    expect(ends[0]!.choices[0]!.logprobs!.content!.length).toBeGreaterThan(0);
    expect(call.filter((c) => !c.choices[0]?.finish_reason).every((c) => c.choices[0]?.logprobs == null)).toBe(true);
  });

  it("a streamed tool call opens with content null and ends as the body does", async () => {
    const request = {model, messages: ask, tools: [weather], tool_choice: "required" as const, temperature: 0, max_tokens: 80};
    const body = await api.client.chat.completions.create(request);
    const first: unknown[] = [];
    const stream = api.client.chat.completions.stream(request).on("chunk", (c) => first.push(c.choices[0]?.delta));
    const final = await stream.finalChatCompletion();
    expect(first[0]).toEqual({role: "assistant", content: null});
    expect(final.choices[0]!.message.content).toBeNull();
    expect(body.choices[0]!.message.content).toBeNull();
    // The stream helper adds parsed_arguments (the tool is strict); the call itself is the same.
    expect(final.choices[0]!.message.tool_calls![0]!.function).toMatchObject(body.choices[0]!.message.tool_calls![0]!.type === "function" ? body.choices[0]!.message.tool_calls![0]!.function : {});
  });

  it("a conversation ending in an assistant message is answered by continuing it (prefill)", async () => {
    const story = [{role: "user" as const, content: "Tell me a story."}];
    const plain = (await api.client.chat.completions.create({model, messages: story, temperature: 0, max_tokens: 40})).choices[0]!.message.content!;
    // Cut the plain reply before a word: the prefilled reply is the rest of it.
    const cut = plain.indexOf(" ", 12);
    expect(cut).toBeGreaterThan(0);
    const prefill = plain.slice(0, cut);
    const res = await api.client.chat.completions.create({model, messages: [...story, {role: "assistant", content: prefill}], temperature: 0, max_tokens: 8});
    const rest = res.choices[0]!.message.content!;
    expect(rest.length).toBeGreaterThan(0);
    expect(plain.slice(cut).startsWith(rest)).toBe(true);
  });

  it("legacy completions take token ids: the same greedy text as the string", async () => {
    const prompt = "Once upon a time";
    const [ids] = await tokenIds([prompt]);
    const byText = await api.client.completions.create({model, prompt, temperature: 0, max_tokens: 12});
    const byIds = await api.client.completions.create({model, prompt: ids!, temperature: 0, max_tokens: 12});
    expect(byIds.choices[0]!.text).toBe(byText.choices[0]!.text);
    expect(byIds.usage?.prompt_tokens).toBe(byText.usage?.prompt_tokens);
    await expect(api.client.completions.create({model, prompt: [1, 999999], max_tokens: 4})).rejects.toMatchObject({status: 400, param: "prompt", message: expect.stringContaining("999999")});
  });

  it("legacy completions take a batch: n choices per prompt, prompt-major, each prompt counted once", async () => {
    const prompts = ["Once upon a time", "The dog"];
    const [ids] = await tokenIds([prompts[1]!]);
    const counts = await countTokens(prompts);
    const res = await api.client.completions.create({model, prompt: [prompts[0]!, prompts[1]!], n: 2, temperature: 0, max_tokens: 6});
    expect(res.choices.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    // Greedy choices of one prompt are one generation: 0 and 1 are the same text.
    expect(res.choices[1]!.text).toBe(res.choices[0]!.text);
    expect(res.choices[3]!.text).toBe(res.choices[2]!.text);
    // Usage counts each prompt once, with the BOS token llama.cpp prepends.
    expect(res.usage!.prompt_tokens).toBe(counts[0]! + counts[1]! + 2);
    expect(res.usage!.completion_tokens).toBe(res.choices.length * 6);

    const stream = await api.client.completions.create({model, prompt: [[...ids!], [...ids!, ids![0]!]], temperature: 1, seed: 4, max_tokens: 5, stream: true});
    const finished = new Map<number, string | null>();
    for await (const chunk of stream) for (const c of chunk.choices) if (c.finish_reason) finished.set(c.index, c.finish_reason);
    expect([...finished.keys()].sort()).toEqual([0, 1]);

    await expect(api.client.completions.create({model, prompt: ["a", "b", "c"], n: 2, temperature: 1, max_tokens: 2})).rejects.toMatchObject({status: 400, param: "prompt", message: expect.stringContaining("4 slots")});
  });

  it("tool_choice allowed_tools: the call is one of the allowed functions", async () => {
    const res = await api.client.chat.completions.create({
      model,
      messages: ask,
      tools: [weather, time],
      tool_choice: {type: "allowed_tools", allowed_tools: {mode: "required", tools: [{type: "function", function: {name: "get_time"}}]}},
      temperature: 1,
      seed: 2,
      max_tokens: 30
    });
    const call = res.choices[0]!.message.tool_calls![0]!;
    expect(call.type === "function" && call.function.name).toBe("get_time");
    await expect(
      api.client.chat.completions.create({model, messages: ask, tools: [weather], tool_choice: {type: "allowed_tools", allowed_tools: {mode: "auto", tools: [{type: "function", function: {name: "nope"}}]}}})
    ).rejects.toMatchObject({status: 400, param: "tool_choice.allowed_tools.tools[0].function.name"});
  });

  it("spec 2.3.0's null moderation and prompt-cache hints are accepted; stream_options without a stream is a 400", async () => {
    const res = await api.client.chat.completions.create({model, messages: ask, max_tokens: 4, moderation: null, prompt_cache_retention: null} as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(res.choices[0]!.message.content).toEqual(expect.any(String));
    await expect(api.client.chat.completions.create({model, messages: ask, max_tokens: 4, stream_options: {include_usage: true}})).rejects.toMatchObject({status: 400, param: "stream_options"});
  });
});
