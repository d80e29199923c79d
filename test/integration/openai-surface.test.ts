import {Ajv} from "ajv";
import OpenAI from "openai";
import {TINY_MODEL_NAME} from "../../dev/paths.js";
import {ServerProcess} from "../../dev/processes/server.js";
import {oracleLogprobs, tokenIds} from "../helpers/tokenize.js";

/** A server on the tiny model for one describe block, and an `openai` client for it. */
function useServer(env: Record<string, string>): {server: ServerProcess; client: OpenAI} {
  const ctx = {} as {server: ServerProcess; client: OpenAI};
  beforeAll(async () => {
    ctx.server = await ServerProcess.start(env);
    ctx.client = new OpenAI({baseURL: `${ctx.server.url}/v1`, apiKey: "unused", maxRetries: 0});
  });
  afterAll(() => ctx.server.stop());
  return ctx;
}

/**
 * The OpenAI features applications rely on beyond plain chat, on the real tiny model
 * through the official `openai` s.client. The tiny model knows no JSON: what makes its
 * output parse and validate is the grammar, which is the point.
 */
describe("OpenAI surface: structured output", () => {
  const s = useServer({PARALLEL_SLOTS: "2"});
  const ajv = new Ajv({strict: true, allErrors: true});

  const messages = [{role: "user" as const, content: "Describe a cat in JSON."}];

  it("json_object: the answer parses as a JSON object, streamed or not, even when max_tokens cuts it", async () => {
    // The tiny model writes stories into JSON strings and never closes its object on its
    // own: max_tokens ends it, and the server closes what is open (finish_reason "length").
    const res = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages, response_format: {type: "json_object"}, max_tokens: 120, temperature: 0});
    expect(res.choices[0]!.finish_reason).toBe("length");
    const value: unknown = JSON.parse(res.choices[0]!.message.content!);
    expect(typeof value === "object" && value !== null && !Array.isArray(value)).toBe(true);

    const stream = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages, response_format: {type: "json_object"}, max_tokens: 77, temperature: 0.8, seed: 3, stream: true});
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(() => JSON.parse(text) as unknown).not.toThrow();
  });

  it("json_schema (strict): the answer validates against the schema, checked by ajv", async () => {
    const schema = {
      type: "object",
      properties: {
        name: {type: "string", maxLength: 12},
        age: {type: "integer"},
        mood: {enum: ["happy", "sad", "sleepy"]},
        friends: {type: "array", items: {type: "string", maxLength: 8}, maxItems: 2},
        indoor: {type: "boolean"},
        owner: {anyOf: [{type: "null"}, {type: "object", properties: {name: {type: "string", maxLength: 10}}, required: ["name"], additionalProperties: false}]}
      },
      required: ["name", "age", "mood", "friends", "indoor", "owner"],
      additionalProperties: false
    };
    const validate = ajv.compile(schema);
    for (const [temperature, seed] of [[0, 1], [1, 7], [1, 8]] as const) {
      const res = await s.client.chat.completions.create({
        model: TINY_MODEL_NAME,
        messages,
        response_format: {type: "json_schema", json_schema: {name: "cat", strict: true, schema}},
        max_tokens: 400,
        temperature,
        seed
      });
      const value: unknown = JSON.parse(res.choices[0]!.message.content!);
      expect(validate.errors ?? []).toEqual([]);
      expect(validate(value)).toBe(true);
    }
  });

  it("refuses a schema keyword it cannot enforce when strict, naming it; not strict, the shape still holds", async () => {
    // Bounds are enforced since #24; a multipleOf other than a power of ten is still refused.
    const schema = {type: "object", properties: {n: {type: "integer", multipleOf: 3}}, required: ["n"], additionalProperties: false};
    const strict = await fetch(`${s.server.url}/v1/chat/completions`, {
      method: "POST",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({model: TINY_MODEL_NAME, messages, response_format: {type: "json_schema", json_schema: {name: "n", strict: true, schema}}})
    });
    expect(strict.status).toBe(400);
    expect(await strict.json()).toMatchObject({error: {type: "invalid_request_error", code: "invalid_json_schema", param: "response_format.json_schema.schema.properties.n.multipleOf"}});

    const loose = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages, response_format: {type: "json_schema", json_schema: {name: "n", strict: false, schema}}, max_tokens: 100, temperature: 0});
    const value = JSON.parse(loose.choices[0]!.message.content!) as {n: unknown};
    expect(Number.isInteger(value.n)).toBe(true);
  });

  it("keeps formats apart in the response cache: the same prompt as text and as JSON are different entries", async () => {
    const ask = (response_format?: {type: "json_object"}) =>
      fetch(`${s.server.url}/v1/chat/completions`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: TINY_MODEL_NAME, messages, max_tokens: 60, temperature: 0, ...(response_format ? {response_format} : {})})});
    const text = await ask();
    const json = await ask({type: "json_object"});
    const jsonAgain = await ask({type: "json_object"});
    const body = async (r: Response) => ((await r.json()) as {choices: Array<{message: {content: string}}>}).choices[0]!.message.content;
    const [t, j, j2] = [await body(text), await body(json), await body(jsonAgain)];
    expect(j).not.toBe(t);
    expect(j2).toBe(j);
    expect(jsonAgain.headers.get("x-cache")).toBe(json.headers.get("x-cache") === "BYPASS" ? "BYPASS" : "HIT");
  });
});

describe("OpenAI surface: embeddings", () => {
  const s = useServer({PARALLEL_SLOTS: "1", CONTEXT_SIZE: "256"});

  it("embeds strings and token arrays: the model's dimension, unit norm, identical inputs identical vectors, usage counted", async () => {
    const res = await s.client.embeddings.create({model: TINY_MODEL_NAME, input: ["Once upon a time", "The dog ran to the park", "Once upon a time"], encoding_format: "float"});
    expect(res.object).toBe("list");
    expect(res.data.map((d) => d.index)).toEqual([0, 1, 2]);
    for (const d of res.data) {
      expect(d.object).toBe("embedding");
      expect(d.embedding).toHaveLength(64); // stories260K's embedding size
      expect(Math.hypot(...d.embedding)).toBeCloseTo(1, 5);
    }
    expect(res.data[2]!.embedding).toEqual(res.data[0]!.embedding);
    expect(res.data[1]!.embedding).not.toEqual(res.data[0]!.embedding);
    expect(res.usage.prompt_tokens).toBeGreaterThan(6);
    expect(res.usage.total_tokens).toBe(res.usage.prompt_tokens);

    // base64 (the openai client's default) decodes to the same float32 values.
    const b64 = await s.client.embeddings.create({model: TINY_MODEL_NAME, input: "Once upon a time"});
    const asFloats = Array.from(b64.data[0]!.embedding);
    expect(asFloats.map((v, i) => Math.abs(v - res.data[0]!.embedding[i]!) < 1e-6).every(Boolean)).toBe(true);

    // Token ids: the same text, tokenized by the client, gives the same vector.
    const tokens = await fetch(`${s.server.url}/v1/embeddings`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: TINY_MODEL_NAME, input: [[1, 2, 3], [4, 5]]})});
    expect(tokens.status).toBe(200);
    expect(((await tokens.json()) as {data: unknown[]}).data).toHaveLength(2);
  });

  it("caches embeddings: the same inputs again are a hit with the same vectors; no-store bypasses", async () => {
    const ask = (headers: Record<string, string> = {}) => fetch(`${s.server.url}/v1/embeddings`, {method: "POST", headers: {"content-type": "application/json", ...headers}, body: JSON.stringify({model: TINY_MODEL_NAME, input: ["cache me", "and me"]})});
    const first = await ask();
    const second = await ask();
    expect([first.headers.get("x-cache"), second.headers.get("x-cache")]).toEqual(["MISS", "HIT"]);
    expect(await second.json()).toEqual(await first.json());
    expect((await ask({"cache-control": "no-store"})).headers.get("x-cache")).toBe("BYPASS");
  });

  it("refuses what it cannot do with 400 naming the parameter", async () => {
    const post = async (body: object) => {
      const r = await fetch(`${s.server.url}/v1/embeddings`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: TINY_MODEL_NAME, ...body})});
      return {status: r.status, error: ((await r.json()) as {error: {param: string; code: string}}).error};
    };
    expect(await post({input: "word ".repeat(400)})).toMatchObject({status: 400, error: {param: "input", code: "context_length_exceeded"}});
    expect(await post({input: "hi", dimensions: 32})).toMatchObject({status: 400, error: {param: "dimensions", code: "unsupported_parameter"}});
    expect(await post({input: ""})).toMatchObject({status: 400, error: {param: "input"}});
    expect(await post({input: [[99999]]})).toMatchObject({status: 400, error: {param: "input"}});
    expect(await post({input: "hi", encoding_format: "int8"})).toMatchObject({status: 400, error: {param: "encoding_format"}});
    const other = await fetch(`${s.server.url}/v1/embeddings`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: "text-embedding-3-small", input: "hi"})});
    expect(other.status).toBe(404);
    // The model is still listed once, and generation still works beside embedding.
    expect((await s.client.models.list()).data.map((m) => m.id)).toEqual([TINY_MODEL_NAME]);
    expect((await s.client.completions.create({model: TINY_MODEL_NAME, prompt: "Once", max_tokens: 4})).choices[0]!.text.length).toBeGreaterThan(0);
  });
});

describe("OpenAI surface: n choices", () => {
  const s = useServer({PARALLEL_SLOTS: "3"});

  it("returns n choices: identical when greedy, sampled side by side otherwise, usage counting every choice", async () => {
    const greedy = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages: [{role: "user", content: "Once upon a time"}], n: 3, max_tokens: 12, temperature: 0});
    expect(greedy.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    const texts = greedy.choices.map((c) => c.message.content);
    expect(new Set(texts).size).toBe(1);
    const one = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages: [{role: "user", content: "Once upon a time"}], max_tokens: 12, temperature: 0}, {headers: {"cache-control": "no-store"}});
    expect(texts[0]).toBe(one.choices[0]!.message.content);
    expect(greedy.usage).toMatchObject({prompt_tokens: one.usage!.prompt_tokens, completion_tokens: 3 * one.usage!.completion_tokens});

    const sampled = await s.client.completions.create({model: TINY_MODEL_NAME, prompt: "The dog", n: 3, max_tokens: 16, temperature: 1, seed: 11});
    expect(sampled.choices).toHaveLength(3);
    expect(new Set(sampled.choices.map((c) => c.text)).size).toBeGreaterThan(1);
    expect(sampled.usage!.completion_tokens).toBeGreaterThan(8);
  });

  it("streams n choices with their index, one finish_reason each", async () => {
    const stream = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages: [{role: "user", content: "A cat"}], n: 2, max_tokens: 8, temperature: 1, seed: 5, stream: true, stream_options: {include_usage: true}});
    const text = ["", ""];
    const finished: number[] = [];
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text[c.index] += c.delta.content ?? "";
        if (c.finish_reason) finished.push(c.index);
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text.every((t) => t.length > 0)).toBe(true);
    expect(finished.sort()).toEqual([0, 1]);
    expect(usage!.completion_tokens).toBeGreaterThan(2);
    expect(usage!.completion_tokens).toBeLessThanOrEqual(16);
  });

  it("refuses n above the slots, naming n", async () => {
    const res = await fetch(`${s.server.url}/v1/chat/completions`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: TINY_MODEL_NAME, messages: [{role: "user", content: "hi"}], n: 4})});
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({error: {param: "n", code: "invalid_value"}});
  });
});

describe("OpenAI surface: tools", () => {
  const s = useServer({PARALLEL_SLOTS: "2"});
  const ajv = new Ajv({strict: true, allErrors: true});

  const weather = {
    type: "object",
    properties: {city: {type: "string", maxLength: 16}, unit: {enum: ["celsius", "fahrenheit"]}, days: {type: "integer"}},
    required: ["city", "unit", "days"],
    additionalProperties: false
  };
  const search = {type: "object", properties: {query: {type: "string", maxLength: 20}, limit: {type: "integer"}}, required: ["query", "limit"], additionalProperties: false};
  const tools: OpenAI.ChatCompletionTool[] = [
    {type: "function", function: {name: "get_weather", description: "Weather forecast for a city", parameters: weather}},
    {type: "function", function: {name: "search", description: "Search the web", parameters: search}}
  ];
  const schemas: Record<string, object> = {get_weather: weather, search};
  const messages: OpenAI.ChatCompletionMessageParam[] = [{role: "user", content: "What is the weather in Paris?"}];
  const valid = (name: string, args: string) => {
    const validate = ajv.getSchema(name) ?? (ajv.addSchema(schemas[name]!, name), ajv.getSchema(name)!);
    const ok = validate(JSON.parse(args));
    expect(validate.errors ?? []).toEqual([]);
    return ok;
  };

  it("tool_choice 'required' and a named function return schema-valid calls", async () => {
    for (const tool_choice of ["required", {type: "function", function: {name: "search"}}] as const) {
      for (const seed of [1, 2]) {
        const res = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages, tools, tool_choice, max_tokens: 200, temperature: 1, seed});
        const choice = res.choices[0]!;
        expect(choice.finish_reason).toBe("tool_calls");
        expect(choice.message.content).toBeNull();
        const call = choice.message.tool_calls![0]!;
        expect(call).toMatchObject({type: "function", id: expect.stringMatching(/^call_/)});
        if (call.type !== "function") throw new Error("not a function call");
        if (typeof tool_choice === "object") expect(call.function.name).toBe("search");
        else expect(Object.keys(schemas)).toContain(call.function.name);
        expect(valid(call.function.name, call.function.arguments)).toBe(true);
      }
    }
  });

  it("streams a call as OpenAI does: id and name first, then the arguments in pieces", async () => {
    for (const tool_choice of ["required", {type: "function", function: {name: "get_weather"}}] as const) {
      const stream = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages, tools, tool_choice, max_tokens: 200, temperature: 0, stream: true});
      let name = "";
      let args = "";
      let pieces = 0;
      let finish: string | null = null;
      for await (const chunk of stream) {
        const delta = chunk.choices[0]?.delta;
        for (const t of delta?.tool_calls ?? []) {
          expect(t.index).toBe(0);
          if (t.function?.name) {
            expect(name).toBe("");
            expect(t.id).toMatch(/^call_/);
            name = t.function.name;
          }
          if (t.function?.arguments) {
            args += t.function.arguments;
            pieces++;
          }
        }
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect(finish).toBe("tool_calls");
      expect(pieces).toBeGreaterThan(1);
      expect(valid(name, args)).toBe(true);
      // The same request, not streamed, gives the same call.
      const whole = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages, tools, tool_choice, max_tokens: 200, temperature: 0});
      const call = whole.choices[0]!.message.tool_calls![0]!;
      if (call.type !== "function") throw new Error("not a function call");
      expect(call.function).toEqual({name, arguments: args});
    }
  });

  it("renders a multi-turn history with tool calls and their results", async () => {
    const history: OpenAI.ChatCompletionMessageParam[] = [
      ...messages,
      {role: "assistant", content: null, tool_calls: [{id: "call_1", type: "function", function: {name: "get_weather", arguments: '{"city":"Paris","unit":"celsius","days":1}'}}]},
      {role: "tool", tool_call_id: "call_1", content: '{"temperature": 21, "sky": "sunny"}'}
    ];
    const answer = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages: [...history, {role: "user", content: "Thanks! And tomorrow?"}], max_tokens: 16, temperature: 0});
    expect(answer.choices[0]!.message.content!.length).toBeGreaterThan(0);
    const again = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages: history, tools, tool_choice: {type: "function", function: {name: "get_weather"}}, max_tokens: 200, temperature: 0});
    const call = again.choices[0]!.message.tool_calls![0]!;
    if (call.type !== "function") throw new Error("not a function call");
    expect(valid("get_weather", call.function.arguments)).toBe(true);
    // The history reached the prompt: it is longer than the question alone.
    const alone = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages, tools, tool_choice: {type: "function", function: {name: "get_weather"}}, max_tokens: 200, temperature: 0});
    expect(again.usage!.prompt_tokens).toBeGreaterThan(alone.usage!.prompt_tokens + 10);
  });

  it("tool_choice 'auto' (OpenAI's default with tools): the model answers in text or calls in its own syntax, parsed by node-llama-cpp", async () => {
    // The tiny model was never taught to call tools: it answers in text. What a call looks
    // like when a model makes one is node-llama-cpp's parsing of its chat wrapper's syntax.
    for (const tool_choice of ["auto", undefined] as const) {
      const res = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages, tools, ...(tool_choice ? {tool_choice} : {}), max_tokens: 24, temperature: 0});
      const choice = res.choices[0]!;
      if (choice.message.tool_calls?.length) {
        expect(choice.finish_reason).toBe("tool_calls");
        for (const call of choice.message.tool_calls) if (call.type === "function") expect(valid(call.function.name, call.function.arguments)).toBe(true);
      } else {
        expect(["stop", "length"]).toContain(choice.finish_reason);
        expect(choice.message.content!.length).toBeGreaterThan(0);
      }
      expect(res.usage!.prompt_tokens).toBeGreaterThan(20); // the tools are documented in the prompt
    }
    const stream = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages, tools, max_tokens: 12, temperature: 0, stream: true}, {headers: {"cache-control": "no-store"}});
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text.length).toBeGreaterThan(0);
  });

  it("refuses what it cannot do, naming the parameter: bad tools and tool messages", async () => {
    const post = async (body: object) => {
      const r = await fetch(`${s.server.url}/v1/chat/completions`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: TINY_MODEL_NAME, messages, ...body})});
      return {status: r.status, error: ((await r.json()) as {error: {param: string; code: string; message: string}}).error};
    };
    expect(await post({tool_choice: "required"})).toMatchObject({status: 400, error: {param: "tool_choice"}});
    expect(await post({tools: [{type: "function", function: {name: "f", parameters: {type: "string"}}}], tool_choice: "required"})).toMatchObject({status: 400, error: {param: "tools[0].function.parameters.type"}});
    expect(await post({tools, tool_choice: {type: "function", function: {name: "nope"}}})).toMatchObject({status: 400, error: {param: "tool_choice.function.name"}});
    expect(await post({messages: [...messages, {role: "tool", tool_call_id: "call_x", content: "{}"}]})).toMatchObject({status: 400, error: {param: "messages[1].tool_call_id"}});
    // tool_choice 'none': tools are not used, the reply is text.
    const none = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages, tools, tool_choice: "none", max_tokens: 8});
    expect(none.choices[0]!.message.tool_calls ?? []).toEqual([]);
    expect(none.choices[0]!.message.content!.length).toBeGreaterThan(0);
  });
});

describe("OpenAI surface: logit_bias", () => {
  const s = useServer({PARALLEL_SLOTS: "1", CACHE_MODE: "off"});

  it("bans a token with -100 and forces one with +100", async () => {
    const ask = (logit_bias?: Record<string, number>) => s.client.completions.create({model: TINY_MODEL_NAME, prompt: "Once upon a time", max_tokens: 6, temperature: 0, ...(logit_bias ? {logit_bias} : {})});
    const plain = (await ask()).choices[0]!.text;
    expect(plain.startsWith(",")).toBe(true);
    // Mid-text pieces: tokenizing "," alone would give the word-initial variant.
    const [afterWord, dog] = await tokenIds(["time,", "a dog"]);
    const comma = afterWord!.at(-1)!;
    expect((await ask({[comma]: -100})).choices[0]!.text).not.toContain(",");
    const forced = (await ask({[dog!.at(-1)!]: 100})).choices[0]!.text;
    // +100 outweighs every other logit: all 6 tokens are that one.
    expect(forced.length).toBeGreaterThan(0);
    expect(forced).toBe(forced.slice(0, forced.length / 6).repeat(6));
    const bad = await fetch(`${s.server.url}/v1/completions`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: TINY_MODEL_NAME, prompt: "x", logit_bias: {"99999": 5}})});
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({error: {param: "logit_bias"}});
  });
});

describe("OpenAI surface: logprobs", () => {
  const s = useServer({PARALLEL_SLOTS: "1"});

  const check = (content: OpenAI.ChatCompletionTokenLogprob[], top: number, text: string) => {
    expect(content.map((c) => c.token).join("")).toBe(text);
    for (const c of content) {
      expect(Number.isFinite(c.logprob)).toBe(true);
      expect(c.logprob).toBeLessThanOrEqual(0);
      expect(Buffer.from(c.bytes!).toString("utf8")).toBe(c.token);
      expect(c.top_logprobs).toHaveLength(top);
      const alts = c.top_logprobs.map((t) => t.logprob);
      expect(alts).toEqual([...alts].sort((a, b) => b - a));
      expect(alts.every(Number.isFinite)).toBe(true);
    }
  };

  it("chat: finite, sorted, and at temperature 0 each chosen token is the most likely one; streamed too", async () => {
    const res = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages: [{role: "user", content: "Once upon a time"}], max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 3});
    const content = res.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(res.usage!.completion_tokens);
    check(content, 3, res.choices[0]!.message.content!);
    for (const c of content) {
      expect(c.top_logprobs[0]!.token).toBe(c.token);
      expect(c.top_logprobs[0]!.logprob).toBeCloseTo(c.logprob, 6);
    }

    const stream = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages: [{role: "user", content: "Once upon a time"}], max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 3, stream: true}, {headers: {"cache-control": "no-store"}});
    let text = "";
    const streamed: OpenAI.ChatCompletionTokenLogprob[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    }
    expect(text).toBe(res.choices[0]!.message.content);
    expect(streamed.map((c) => [c.token, c.logprob.toFixed(4)])).toEqual(content.map((c) => [c.token, c.logprob.toFixed(4)]));
  });

  it("streamed: each chunk carries its own tokens' logprobs, which match an independent greedy decode", async () => {
    // The server found Paddock's patch in its llama.cpp binary and said so at start.
    expect(s.server.logs.map((l) => l.msg)).toContain("logprobs: from the sampler, chunk by chunk (Paddock's node-llama-cpp patch is compiled in)");
    const [ids] = await tokenIds(["Once upon a time"]);
    const stream = await s.client.completions.create({model: TINY_MODEL_NAME, prompt: ids!, max_tokens: 12, temperature: 0, logprobs: 3, stream: true}, {headers: {"cache-control": "no-store"}});
    const chunks: OpenAI.Completion[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const texts = chunks.filter((c) => c.choices[0]!.text !== "");
    expect(texts.length).toBeGreaterThan(1);
    let at = 0;
    for (const c of texts) {
      const {text, logprobs} = c.choices[0]!;
      expect(logprobs!.tokens!.join("")).toBe(text);
      expect(logprobs!.text_offset![0]).toBe(at);
      at += text.length;
    }
    // Nothing was held for the end.
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("length");
    expect(chunks.at(-1)!.choices[0]!.logprobs).toBeNull();

    const streamed = texts.flatMap((c) => {
      const lp = c.choices[0]!.logprobs!;
      return lp.tokens!.map((token, i) => ({token, logprob: lp.token_logprobs![i]!, top: lp.top_logprobs![i]!}));
    });
    const oracle = await oracleLogprobs(ids!, 12, 3);
    expect(streamed.map((t) => t.token)).toEqual(oracle.map((o) => o.token));
    streamed.forEach((t, i) => {
      expect(t.logprob).toBeCloseTo(oracle[i]!.logprob, 3);
      // As sets: two near-equal alternatives may come in either order from two builds.
      expect(Object.keys(t.top).sort()).toEqual(oracle[i]!.top.map((o) => o.token).sort());
      oracle[i]!.top.forEach((o) => expect(t.top[o.token]).toBeCloseTo(o.logprob, 3));
    });
  });

  it("streamed: the first chunk's logprobs arrive while the reply is still being generated", async () => {
    const leave = new AbortController();
    const body = {model: TINY_MODEL_NAME, messages: [{role: "user", content: "Tell me a story"}], max_tokens: 2000, logit_bias: {"2": -100}, temperature: 1, logprobs: true, top_logprobs: 2, stream: true};
    const res = await fetch(`${s.server.url}/v1/chat/completions`, {method: "POST", headers: {"content-type": "application/json", "cache-control": "no-store"}, body: JSON.stringify(body), signal: leave.signal});
    const reader = res.body!.getReader();
    let buffered = "";
    let first: {choices: Array<{delta: {content?: string}; logprobs: {content: Array<{token: string; top_logprobs: unknown[]}>} | null}>} | undefined;
    while (!first) {
      const {value, done} = await reader.read();
      expect(done).toBe(false);
      buffered += new TextDecoder().decode(value);
      const events = buffered.split("\n\n");
      buffered = events.pop()!;
      first = events.map((e) => JSON.parse(e.replace(/^data: /, "")) as NonNullable<typeof first>).find((c) => c.choices[0]?.delta.content);
    }
    leave.abort();
    const logprobs = first.choices[0]!.logprobs!.content;
    expect(logprobs.length).toBeGreaterThan(0);
    expect(logprobs.map((t) => t.token).join("")).toBe(first.choices[0]!.delta.content);
    expect(logprobs[0]!.top_logprobs).toHaveLength(2);
  });

  it("a reply that opens a turn is spelled by its tokens from the first (a word-initial token reads without its space there)", async () => {
    // "I" alone tokenizes to its word-initial form ("▁I"), which reads " I" after other text.
    const [ids] = await tokenIds(["I"]);
    const res = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages: [{role: "user", content: "Tell me a story"}], max_tokens: 3, temperature: 0, logit_bias: {[ids!.at(-1)!]: 100}, logprobs: true}, {headers: {"cache-control": "no-store"}});
    const content = res.choices[0]!.message.content!;
    expect(content.startsWith("I")).toBe(true);
    expect(res.choices[0]!.logprobs!.content!.map((t) => t.token).join("")).toBe(content);
  });

  it("sampled tokens get their own log probability, alternatives counting them; legacy completions use parallel arrays", async () => {
    const res = await s.client.chat.completions.create({model: TINY_MODEL_NAME, messages: [{role: "user", content: "A dog"}], max_tokens: 12, temperature: 1.5, seed: 4, logprobs: true});
    check(res.choices[0]!.logprobs!.content!, 0, res.choices[0]!.message.content!);

    const legacy = await s.client.completions.create({model: TINY_MODEL_NAME, prompt: "Once upon a time", max_tokens: 8, temperature: 0, logprobs: 2});
    const lp = legacy.choices[0]!.logprobs!;
    expect(lp.tokens!.join("")).toBe(legacy.choices[0]!.text);
    expect(lp.token_logprobs).toHaveLength(lp.tokens!.length);
    expect(lp.top_logprobs!.every((t) => Object.keys(t).length === 2)).toBe(true);
    expect(lp.text_offset![0]).toBe(0);
  });

  it("refuses bad values naming the parameter", async () => {
    const post = async (path: string, body: object) => {
      const r = await fetch(`${s.server.url}${path}`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: TINY_MODEL_NAME, ...body})});
      return {status: r.status, error: ((await r.json()) as {error: {param: string}}).error};
    };
    const messages = [{role: "user", content: "hi"}];
    expect(await post("/v1/chat/completions", {messages, logprobs: true, top_logprobs: 21})).toMatchObject({status: 400, error: {param: "top_logprobs"}});
    expect(await post("/v1/chat/completions", {messages, top_logprobs: 2})).toMatchObject({status: 400, error: {param: "top_logprobs"}});
    expect(await post("/v1/completions", {prompt: "x", logprobs: 6})).toMatchObject({status: 400, error: {param: "logprobs"}});
  });
});
