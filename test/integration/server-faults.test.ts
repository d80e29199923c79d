import {mkdtempSync, rmSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {Ajv} from "ajv";
import {TINY_MODEL} from "../../dev/paths.js";
import {SHAPES, writeSyntheticModel} from "../../dev/models/synthetic.js";
import {ServerProcess} from "../../dev/processes/server.js";
import {parseMetrics, sample} from "../../dev/metrics-text.js";

/**
 * Faults of the inference server a user meets in ordinary use (issue #26, items 6 and
 * 8-11), against the real server: logprobs on a realistic vocabulary, two tenants on one
 * replica, embeddings under load, JSON mode ended by a stop string, schemas whose branches
 * share properties. Each failed before its fix.
 */
const chat = (url: string, body: Record<string, unknown>, key?: string) =>
  fetch(`${url}/v1/chat/completions`, {method: "POST", headers: {"content-type": "application/json", ...(key ? {authorization: `Bearer ${key}`} : {})}, body: JSON.stringify({model: "tiny", ...body})});
const embed = (url: string, input: string[]) => fetch(`${url}/v1/embeddings`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: "tiny", input})});

describe("inference server faults under real use", () => {
  const dir = mkdtempSync(join(tmpdir(), "paddock-faults-"));
  const servers: ServerProcess[] = [];
  const start = async (env: Record<string, string> = {}) => {
    const s = await ServerProcess.start({MODEL_NAME: "tiny", CACHE_MODE: "off", ...env});
    servers.push(s);
    return s;
  };
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
  });
  afterAll(() => rmSync(dir, {recursive: true, force: true}));

  it("logprobs on a 128k vocabulary (Llama-3's size) keep the replica's memory small: 400 tokens with top_logprobs 5", async () => {
    // The tiny model's shape with a realistic vocabulary: the output layer is 128,256 wide.
    const model = join(dir, "vocab-128k.gguf");
    writeSyntheticModel({shape: SHAPES["tiny"]!, tokenizerFrom: TINY_MODEL, out: model, vocab: 128_256, textOnly: true, seed: 3});
    const s = await start({MODEL_PATH: model, PARALLEL_SLOTS: "1"});
    const rss = async () => sample(parseMetrics(await s.metrics()), "process_resident_memory_bytes");
    const loaded = await rss();
    const res = await chat(s.url, {messages: [{role: "user", content: "Tell me a story"}], max_tokens: 400, logprobs: true, top_logprobs: 5, logit_bias: {"2": -100}});
    expect(res.status).toBe(200);
    const body = (await res.json()) as {usage: {completion_tokens: number}; choices: Array<{logprobs: {content: Array<{logprob: number; top_logprobs: Array<{logprob: number}>}>}}>};
    const content = body.choices[0]!.logprobs.content;
    expect(content.length).toBeGreaterThan(350);
    for (const t of content) {
      expect(t.top_logprobs).toHaveLength(5);
      expect(t.logprob).toBeLessThanOrEqual(0);
      // The alternatives come best first, and the chosen token is never likelier than the best.
      expect(t.top_logprobs[0]!.logprob).toBeGreaterThanOrEqual(t.top_logprobs[4]!.logprob);
      expect(t.logprob).toBeLessThanOrEqual(t.top_logprobs[0]!.logprob + 1e-6);
    }
    // Before: a Map of 128k probabilities per token, all held at once (3 GB at 400 tokens).
    const grown = (await rss()) - loaded;
    process.stdout.write(`logprobs, 128k vocabulary, 400 tokens: RSS ${Math.round(loaded / 2 ** 20)} MiB loaded, +${Math.round(grown / 2 ** 20)} MiB after\n`);
    expect(grown).toBeLessThan(150 * 2 ** 20);
  }, 180_000);

  it("tenants on one replica never share a slot's prefix: cached_tokens tells tenant B nothing about tenant A's prompt", async () => {
    const keys = join(dir, "keys");
    writeFileSync(keys, "key-a\nkey-b\n");
    const s = await start({API_KEYS_FILE: keys, PARALLEL_SLOTS: "1", PROMPT_CACHE_BYTES: "0"});
    const system = `You are the assistant of ${"a very secret company with a long name ".repeat(12)}`;
    const ask = async (key: string) => {
      const res = await chat(s.url, {messages: [{role: "system", content: system}, {role: "user", content: "hi"}], max_tokens: 2, temperature: 1}, key);
      expect(res.status).toBe(200);
      return ((await res.json()) as {usage: {prompt_tokens: number; prompt_tokens_details: {cached_tokens: number}}}).usage;
    };
    await ask("key-a");
    const again = await ask("key-a");
    expect(again.prompt_tokens_details.cached_tokens).toBeGreaterThan(again.prompt_tokens / 2);
    const other = await ask("key-b");
    expect(other.prompt_tokens_details.cached_tokens).toBe(0);
  });

  it("embeddings count as active requests, get 429 past the queue, and 503 past the deadline", async () => {
    const s = await start({MAX_QUEUE: "1", PARALLEL_SLOTS: "1"});
    const inputs = Array.from({length: 600}, (_, i) => `${i} Once upon a time there was a little girl named Lily who loved to play in the park with her dog`);
    const inFlight = [embed(s.url, inputs), embed(s.url, inputs), embed(s.url, inputs), embed(s.url, inputs)];
    let active = 0;
    for (let i = 0; i < 50 && active === 0; i++) {
      active = sample(parseMetrics(await s.metrics()), "llm_active_requests") ?? 0;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(active).toBeGreaterThanOrEqual(1);
    const responses = await Promise.all(inFlight);
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toContain(200);
    expect(statuses).toContain(429);
    expect(responses.find((r) => r.status === 429)!.headers.get("retry-after")).toBe("1");
    await s.stop();
    servers.length = 0;
    const slow = await start({REQUEST_TIMEOUT_SECONDS: "0.3"});
    const timedOut = await embed(slow.url, [...inputs, ...inputs]);
    expect(timedOut.status).toBe(503);
    expect(await timedOut.json()).toMatchObject({error: {code: "queue_timeout"}});
  }, 120_000);

  it("JSON mode ended by a stop string still answers a JSON object that parses", async () => {
    const s = await start();
    const res = await chat(s.url, {messages: [{role: "user", content: "Give me a JSON object about Lily"}], response_format: {type: "json_object"}, stop: [","], max_tokens: 200, temperature: 0});
    const body = (await res.json()) as {choices: Array<{message: {content: string}; finish_reason: string}>};
    expect(body.choices[0]!.finish_reason).toBe("stop");
    expect(() => JSON.parse(body.choices[0]!.message.content) as unknown).not.toThrow();
  });

  // Since #24, strict: true holds a schema to OpenAI's strict rules (every property required,
  // additionalProperties false), which these JSON Schema idioms break: strict answers 400
  // naming the object, and strict: false still enforces the branches whole (the #26 fault).
  it("schemas whose branches share the parent's properties are enforced whole; required-only branches are accepted", async () => {
    const s = await start();
    const ajv = new Ajv({strict: false, allErrors: true});
    const schemas = [
      {type: "object", properties: {id: {type: "integer"}}, required: ["id"], anyOf: [{properties: {cat: {type: "string", maxLength: 8}}, required: ["cat"]}, {properties: {dog: {type: "boolean"}}, required: ["dog"]}]},
      {type: "object", properties: {a: {type: "string", maxLength: 8}, b: {type: "boolean"}}, additionalProperties: false, anyOf: [{required: ["a"]}, {required: ["b"]}]}
    ];
    for (const schema of schemas) {
      for (const temperature of [0, 1]) {
        const res = await chat(s.url, {messages: [{role: "user", content: "An animal"}], response_format: {type: "json_schema", json_schema: {name: "pet", schema, strict: false}}, max_tokens: 120, temperature, seed: 7});
        expect(res.status).toBe(200);
        const answer = JSON.parse(((await res.json()) as {choices: Array<{message: {content: string}}>}).choices[0]!.message.content) as unknown;
        const validate = ajv.compile(schema);
        expect({answer, valid: validate(answer), errors: validate.errors}).toMatchObject({valid: true});
      }
      const strict = await chat(s.url, {messages: [{role: "user", content: "An animal"}], response_format: {type: "json_schema", json_schema: {name: "pet", schema, strict: true}}, max_tokens: 8});
      expect(strict.status).toBe(400);
      expect(await strict.json()).toMatchObject({error: {code: "invalid_json_schema", message: expect.stringMatching(/strict mode needs/) as unknown}});
    }
  }, 120_000);
});
