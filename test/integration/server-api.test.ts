import OpenAI from "openai";
import {parseMetrics, sample} from "../../dev/metrics-text.js";
import {TINY_MODEL_NAME} from "../../dev/paths.js";
import {ServerProcess} from "../../dev/processes/server.js";
import {countTokens} from "../helpers/tokenize.js";

/** The real server on the real tiny model; every request here runs alone, so greedy text is comparable. */
describe("inference server API", () => {
  let server: ServerProcess;
  let client: OpenAI;

  beforeAll(async () => {
    server = await ServerProcess.start({PARALLEL_SLOTS: "2"});
    client = new OpenAI({baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0});
  });
  afterAll(() => server.stop());

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, {method: "POST", headers: {"content-type": "application/json", ...headers}, body: typeof body === "string" ? body : JSON.stringify(body)});

  it("lists the model", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([TINY_MODEL_NAME]);
    expect((await client.models.retrieve(TINY_MODEL_NAME)).owned_by).toBe("paddock");
  });

  it("completes greedily and deterministically, with the story the model is known for", async () => {
    const ask = () => client.completions.create({model: TINY_MODEL_NAME, prompt: "Once upon a time", max_tokens: 24, temperature: 0});
    const first = await ask();
    const second = await ask();
    expect(first.choices[0]!.text).toMatch(/^, there was a little girl named Lily/);
    expect(second.choices[0]!.text).toBe(first.choices[0]!.text);
    expect(first.choices[0]!.finish_reason).toBe("length");
    expect(first.object).toBe("text_completion");
  });

  it("counts usage with the model's own tokenizer (prompt plus BOS; max_tokens reached)", async () => {
    const prompt = "The little dog ran to the park";
    const res = await client.completions.create({model: TINY_MODEL_NAME, prompt, max_tokens: 17, temperature: 0});
    const [promptTokens] = await countTokens([prompt]);
    expect(res.usage).toMatchObject({prompt_tokens: promptTokens! + 1, completion_tokens: 17, total_tokens: promptTokens! + 18});
  });

  it("reuses a shared system prompt from the slot that holds it, and reports it as cached_tokens", async () => {
    // Each request runs alone, with the response cache out of the way (no-store): this is the
    // slots' KV cache. Between the two that share a system prompt, another takes a slot (this
    // server has 2): it must take the other one.
    const system = "You are a teller of short stories for small children. ".repeat(25);
    const ask = (sys: string, user: string) =>
      client.chat.completions.create({model: TINY_MODEL_NAME, messages: [{role: "system", content: sys}, {role: "user", content: user}], max_tokens: 4, temperature: 0}, {headers: {"cache-control": "no-store"}});
    const before = sample(parseMetrics(await (await fetch(`${server.url}/metrics`)).text()), "llm_prompt_cached_tokens_total");
    const first = await ask(system, "A dog");
    await ask("Be brief.", "Hello");
    const again = await ask(system, "A cat");
    expect(first.usage!.prompt_tokens_details?.cached_tokens).toBeLessThan(first.usage!.prompt_tokens / 10);
    const cached = again.usage!.prompt_tokens_details!.cached_tokens!;
    expect(cached).toBeGreaterThan(again.usage!.prompt_tokens * 0.9);
    expect(cached).toBeLessThan(again.usage!.prompt_tokens);
    const after = sample(parseMetrics(await (await fetch(`${server.url}/metrics`)).text()), "llm_prompt_cached_tokens_total");
    expect(after - before).toBeGreaterThanOrEqual(cached);
  });

  it("streams chat chunks that concatenate to the non-streaming text, with usage last", async () => {
    const request = {model: TINY_MODEL_NAME, messages: [{role: "user" as const, content: "Tell me about a cat."}], max_tokens: 40, temperature: 0};
    const whole = await client.chat.completions.create(request);
    const stream = await client.chat.completions.create({...request, stream: true, stream_options: {include_usage: true}});
    const pieces: string[] = [];
    const finishReasons: Array<string | null> = [];
    let usage: OpenAI.CompletionUsage | undefined | null;
    let role: string | undefined;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (choice) {
        role ??= choice.delta.role;
        pieces.push(choice.delta.content ?? "");
        finishReasons.push(choice.finish_reason);
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(role).toBe("assistant");
    expect(pieces.join("")).toBe(whole.choices[0]!.message.content);
    expect(pieces.filter((p) => p !== "").length).toBeGreaterThan(1);
    expect(finishReasons.at(-1)).toBe(whole.choices[0]!.finish_reason);
    // The stream is a response-cache hit (same greedy request): same counts, all of the prompt cached.
    expect(usage).toMatchObject({prompt_tokens: whole.usage!.prompt_tokens, completion_tokens: whole.usage!.completion_tokens, total_tokens: whole.usage!.total_tokens});
    expect(usage!.prompt_tokens_details?.cached_tokens).toBe(whole.usage!.prompt_tokens);
  });

  it("streams legacy completions ending with data: [DONE]", async () => {
    const res = await post("/v1/completions", {model: TINY_MODEL_NAME, prompt: "Once", max_tokens: 5, temperature: 0, stream: true});
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = (await res.text()).split("\n\n").filter(Boolean);
    expect(events.at(-1)).toBe("data: [DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, "")) as {choices: Array<{text: string; finish_reason: string | null}>});
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("length");
  });

  it("stops at a stop sequence with finish_reason stop, without including it", async () => {
    const res = await client.completions.create({model: TINY_MODEL_NAME, prompt: "Once upon a time", max_tokens: 50, temperature: 0, stop: ["Lily"]});
    expect(res.choices[0]!.text).toBe(", there was a little girl named ");
    expect(res.choices[0]!.finish_reason).toBe("stop");
  });

  it("gives the same sampled text for the same seed", async () => {
    const ask = (seed: number) => client.completions.create({model: TINY_MODEL_NAME, prompt: "Once upon a time", max_tokens: 30, temperature: 1, seed});
    const [a, b] = [await ask(42), await ask(42)];
    expect(a.choices[0]!.text).toBe(b.choices[0]!.text);
  });

  it("penalizes repeated tokens when asked (frequency_penalty), and only then", async () => {
    // The sampler's config is resolved once per generation, except with penalties, whose
    // window of past tokens moves at every step (inference-image/patches): greedy text that
    // repeats itself must change under a penalty, and stay as it was without one (or at 0).
    const ask = (frequency_penalty?: number) =>
      client.completions.create({model: TINY_MODEL_NAME, prompt: "Once upon a time", max_tokens: 60, temperature: 0, ...(frequency_penalty === undefined ? {} : {frequency_penalty})}, {headers: {"cache-control": "no-store"}});
    const words = (text: string) => text.toLowerCase().match(/[a-z]+/g) ?? [];
    const repeats = (text: string) => words(text).length - new Set(words(text)).size;
    const plain = (await ask()).choices[0]!.text;
    const penalized = (await ask(2)).choices[0]!.text;
    expect((await ask(0)).choices[0]!.text).toBe(plain);
    expect(penalized).not.toBe(plain);
    expect(repeats(penalized)).toBeLessThan(repeats(plain));
  });

  it("counts the tokens of a lone generation and keeps its reply in the slot for the next turn", async () => {
    // A request that runs alone decodes its tokens outside node-llama-cpp's batch scheduler
    // (inference-image/patches, sequence-hot-path): the usage it reports and the slot's
    // record of what it holds must be what the scheduler would have left. The next turn
    // repeats the reply, so its cached prefix reaches past the first prompt into the reply.
    const turn = (messages: Array<{role: "user" | "assistant"; content: string}>, max_tokens: number) =>
      client.chat.completions.create({model: TINY_MODEL_NAME, messages, max_tokens, temperature: 0}, {headers: {"cache-control": "no-store"}});
    const question = "Once upon a time there was a little dog named Max.";
    const first = await turn([{role: "user", content: question}], 24);
    expect(first.choices[0]!.finish_reason).toBe("length");
    expect(first.usage!.completion_tokens).toBe(24);
    const reply = first.choices[0]!.message.content!;
    const second = await turn([{role: "user", content: question}, {role: "assistant", content: reply}, {role: "user", content: "What happened next?"}], 4);
    const cached = second.usage!.prompt_tokens_details!.cached_tokens!;
    expect(cached).toBeGreaterThan(first.usage!.prompt_tokens + 12);
    expect(cached).toBeLessThan(second.usage!.prompt_tokens);
  });

  it("keeps the seed's /generate endpoint", async () => {
    const res = await post("/generate", {prompt: "Once upon a time", max_tokens: 8});
    expect(res.status).toBe(200);
    const body = (await res.json()) as {result: string};
    expect(body.result).toMatch(/^, there was/);
  });

  it.each([
    ["malformed JSON", "/v1/chat/completions", "{oops", 400, "invalid_json", null],
    ["a wrong type", "/v1/chat/completions", {model: TINY_MODEL_NAME, messages: "hi"}, 400, "invalid_value", "messages"],
    ["an unknown model", "/v1/chat/completions", {model: "gpt-4", messages: [{role: "user", content: "hi"}]}, 404, "model_not_found", "model"],
    ["n above the slots", "/v1/completions", {model: TINY_MODEL_NAME, prompt: "x", n: 3}, 400, "invalid_value", "n"],
    ["a tool whose parameters are not an object", "/v1/chat/completions", {model: TINY_MODEL_NAME, messages: [{role: "user", content: "hi"}], tools: [{type: "function", function: {name: "f", parameters: {type: "array"}}}]}, 400, "invalid_value", "tools[0].function.parameters.type"],
    ["an image part", "/v1/chat/completions", {model: TINY_MODEL_NAME, messages: [{role: "user", content: [{type: "image_url", image_url: {url: "http://x/y.png"}}]}]}, 400, "unsupported_parameter", "messages[0].content[0].type"],
    ["an unknown field", "/v1/completions", {model: TINY_MODEL_NAME, prompt: "x", best_guess: true}, 400, "unknown_parameter", "best_guess"],
    ["a prompt longer than the context", "/v1/completions", {model: TINY_MODEL_NAME, prompt: "cat ".repeat(3000)}, 400, "context_length_exceeded", "prompt"],
    ["an oversized body", "/v1/completions", {model: TINY_MODEL_NAME, prompt: "x".repeat(2 * 1024 * 1024)}, 413, "request_too_large", null]
  ])("answers %s with an OpenAI error body", async (_what, path, body, status, code, param) => {
    const res = await post(path, body);
    expect(res.status).toBe(status);
    const json = (await res.json()) as {error: {message: string; type: string; param: string | null; code: string}};
    expect(json.error).toEqual({message: expect.any(String), type: "invalid_request_error", param, code});
  });

  it("surfaces errors through the openai client as typed exceptions", async () => {
    await expect(client.chat.completions.create({model: "nope", messages: [{role: "user", content: "x"}]})).rejects.toMatchObject({status: 404, code: "model_not_found"});
  });

  it("answers unknown paths with 404 and stays healthy after every bad request", async () => {
    expect((await fetch(`${server.url}/v1/images/generations`, {method: "POST"})).status).toBe(404);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
  });

  it("exports parseable metrics whose counters move with traffic", async () => {
    const before = parseMetrics(await server.metrics());
    await client.completions.create({model: TINY_MODEL_NAME, prompt: "Once", max_tokens: 10, temperature: 0});
    await post("/v1/completions", {model: TINY_MODEL_NAME, prompt: "x", n: 3});
    const after = parseMetrics(await server.metrics());
    const delta = (key: string) => sample(after, key) - sample(before, key);
    expect(delta('llm_requests_total{endpoint="completions",status="200"}')).toBe(1);
    expect(delta('llm_requests_total{endpoint="completions",status="400"}')).toBe(1);
    expect(delta("llm_completion_tokens_total")).toBe(10);
    const [onceTokens] = await countTokens(["Once"]);
    expect(delta("llm_prompt_tokens_total")).toBe(onceTokens! + 1);
    expect(delta('llm_request_duration_seconds_count{endpoint="completions"}')).toBe(2);
    expect(delta('llm_time_to_first_token_seconds_count{endpoint="completions"}')).toBe(1);
    expect(delta("llm_inter_token_latency_seconds_count")).toBe(9);
    // Millisecond resolution: the tiny model's first token lands below the 100 ms bucket.
    expect(sample(after, 'llm_time_to_first_token_seconds_bucket{le="0.1",endpoint="completions"}')).toBeGreaterThan(0);
    expect(sample(after, 'llm_model_memory_bytes{device="ram"}')).toBeGreaterThan(1_000_000);
    expect(sample(after, "llm_slots")).toBe(2);
    expect(sample(after, "llm_active_requests")).toBe(0);
    expect(sample(after, "llm_busy_slots")).toBe(0);
  });

  it("logs one JSON line per request without the prompt text", async () => {
    const secret = "purple elephant secret";
    const res = await post("/v1/completions", {model: TINY_MODEL_NAME, prompt: secret, max_tokens: 3, temperature: 0}, {"x-request-id": "trace-123"});
    expect(res.headers.get("x-request-id")).toBe("trace-123");
    await res.json();
    const line = await server.waitForLog((l) => l.msg === "request" && l["id"] === "trace-123");
    expect(line).toMatchObject({level: "info", endpoint: "completions", status: 200, completion_tokens: 3, finish_reason: "length"});
    expect(typeof line["duration_ms"]).toBe("number");
    expect(JSON.stringify(server.logs)).not.toContain(secret);
  });
});
