import {mkdtempSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import OpenAI from "openai";
import {parseMetrics, sample} from "../../dev/metrics-text.js";
import {TINY_MODEL_NAME} from "../../dev/paths.js";
import {RedisProcess} from "../../dev/processes/redis.js";
import {ServerProcess, sleep} from "../../dev/processes/server.js";

type Chat = OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming;
const greedy = (content: string, extra: Partial<Chat> = {}): Chat => ({
  model: TINY_MODEL_NAME,
  messages: [{role: "user", content}],
  max_tokens: 24,
  temperature: 0,
  ...extra
});

function clientFor(server: ServerProcess, apiKey = "unused"): OpenAI {
  return new OpenAI({baseURL: `${server.url}/v1`, apiKey, maxRetries: 0});
}

/** A chat completion and its X-Cache header, through the official client. */
async function chat(client: OpenAI, body: Chat, headers: Record<string, string> = {}) {
  const {data, response} = await client.chat.completions.create(body, {headers}).withResponse();
  return {text: data.choices[0]!.message.content, usage: data.usage, finish: data.choices[0]!.finish_reason, cache: response.headers.get("x-cache")};
}

/** A streamed chat completion: its chunks (without ids/timestamps) and X-Cache header. */
async function chatStream(client: OpenAI, body: Chat) {
  const {data: stream, response} = await client.chat.completions.create({...body, stream: true, stream_options: {include_usage: true}}).withResponse();
  const chunks: unknown[] = [];
  // cached_tokens differs by design (a hit ran no model); the rest must be identical.
  for await (const chunk of stream) chunks.push({choices: chunk.choices, usage: chunk.usage ? {...chunk.usage, prompt_tokens_details: undefined} : chunk.usage});
  return {chunks, cache: response.headers.get("x-cache")};
}

async function metric(server: ServerProcess, key: string): Promise<number> {
  return sample(parseMetrics(await server.metrics()), key);
}

async function waitModelDigest(server: ServerProcess): Promise<void> {
  await server.waitForLog((l) => l.msg === "model digest computed; cache active");
}

describe("response cache, in memory (the default)", () => {
  let server: ServerProcess;
  let client: OpenAI;
  beforeAll(async () => {
    server = await ServerProcess.start();
    await waitModelDigest(server);
    client = clientFor(server);
  });
  afterAll(() => server.stop());

  it("answers a repeated greedy request from cache with the same text and usage", async () => {
    const first = await chat(client, greedy("The cat sat"));
    const second = await chat(client, greedy("The cat sat"));
    expect(first.cache).toBe("MISS");
    expect(second.cache).toBe("HIT");
    expect(second.text).toBe(first.text);
    expect(second.usage).toMatchObject({prompt_tokens: first.usage!.prompt_tokens, completion_tokens: first.usage!.completion_tokens, total_tokens: first.usage!.total_tokens});
    // A hit ran no model: all of its prompt counts as cached.
    expect(second.usage!.prompt_tokens_details?.cached_tokens).toBe(first.usage!.prompt_tokens);
    expect(second.finish).toBe(first.finish);
    expect(await metric(server, 'llm_responses_total{source="cache"}')).toBeGreaterThanOrEqual(1);
    expect(await metric(server, "llm_cache_stored_bytes")).toBeGreaterThan(0);
  });

  it("replays a hit as a stream equivalent to the original, and serves it to non-streaming callers too", async () => {
    const miss = await chatStream(client, greedy("A dog ran"));
    const hit = await chatStream(client, greedy("A dog ran"));
    expect([miss.cache, hit.cache]).toEqual(["MISS", "HIT"]);
    expect(hit.chunks).toEqual(miss.chunks);
    const plain = await chat(client, greedy("A dog ran"));
    expect(plain.cache).toBe("HIT");
    const streamedText = miss.chunks.map((c) => (c as {choices: Array<{delta: {content?: string}}>}).choices[0]?.delta.content ?? "").join("");
    expect(plain.text).toBe(streamedText);
  });

  it("bypasses sampled requests without a seed, caches seeded ones", async () => {
    const sampled = greedy("Sun and moon", {temperature: 0.8});
    expect((await chat(client, sampled)).cache).toBe("BYPASS");
    expect((await chat(client, sampled)).cache).toBe("BYPASS");
    const seeded = greedy("Sun and moon", {temperature: 0.8, seed: 11});
    expect((await chat(client, seeded)).cache).toBe("MISS");
    expect((await chat(client, seeded)).cache).toBe("HIT");
  });

  it("honours Cache-Control: no-cache (fresh answer, entry refreshed) and no-store", async () => {
    await chat(client, greedy("Blue sky"));
    expect((await chat(client, greedy("Blue sky"), {"cache-control": "no-cache"})).cache).toBe("MISS");
    expect((await chat(client, greedy("Blue sky"))).cache).toBe("HIT");
    expect((await chat(client, greedy("Green grass"), {"cache-control": "no-store"})).cache).toBe("BYPASS");
    expect((await chat(client, greedy("Green grass"))).cache).toBe("MISS");
  });

  it("runs one generation for 8 identical concurrent requests (single flight)", async () => {
    const before = await metric(server, 'llm_responses_total{source="generated"}');
    const body = greedy("Eight friends", {max_tokens: 200});
    const answers = await Promise.all(Array.from({length: 8}, () => chat(client, body)));
    const after = parseMetrics(await server.metrics());
    expect(sample(after, 'llm_responses_total{source="generated"}') - before).toBe(1);
    expect(sample(after, 'llm_responses_total{source="coalesced"}')).toBeGreaterThanOrEqual(1);
    expect(new Set(answers.map((a) => a.text)).size).toBe(1);
    expect(answers.filter((a) => a.cache === "MISS").length + answers.filter((a) => a.cache === "HIT").length).toBe(8);
  });

  it("gives streaming followers of one generation the same stream", async () => {
    const before = await metric(server, 'llm_responses_total{source="generated"}');
    const streams = await Promise.all(Array.from({length: 4}, () => chatStream(client, greedy("Four streams", {max_tokens: 200}))));
    expect(await metric(server, 'llm_responses_total{source="generated"}')).toBe(before + 1);
    for (const s of streams.slice(1)) expect(s.chunks).toEqual(streams[0]!.chunks);
  });

  it("keeps a shared generation going when one of its clients leaves", async () => {
    const body = JSON.stringify({...greedy("One leaves", {max_tokens: 600}), stream: true, stream_options: {include_usage: true}});
    const post = (signal?: AbortSignal) =>
      fetch(`${server.url}/v1/chat/completions`, {method: "POST", headers: {"content-type": "application/json"}, body, ...(signal ? {signal} : {})});
    const generated = await metric(server, 'llm_responses_total{source="generated"}');
    const coalesced = await metric(server, 'llm_responses_total{source="coalesced"}');
    const leaver = new AbortController();
    const first = await post(leaver.signal);
    await first.body!.getReader().read();
    // A follower's stream opens when it attaches to the running generation (its headers are
    // the proof), so the leaver leaves a generation that is shared by then.
    const stayer = await post();
    expect(stayer.status).toBe(200);
    leaver.abort();
    const text = await stayer.text();
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(text).toContain('"completion_tokens":600');
    expect(await metric(server, 'llm_responses_total{source="coalesced"}')).toBe(coalesced + 1);
    expect(await metric(server, 'llm_responses_total{source="generated"}')).toBe(generated);
  });

  it("never joins a generation whose clients all left: identical requests sent right after get a full answer", async () => {
    // A long prompt (~1,000 tokens, seconds to evaluate here): its evaluation cannot be
    // interrupted, so the abandoned generation lingers while the retries arrive.
    const prompt = `${"Once upon a time there was a little dog who liked to run in the park. ".repeat(40)}The end`;
    const body = {...greedy(prompt, {max_tokens: 16})};
    const leaver = new AbortController();
    const abandoned = fetch(`${server.url}/v1/chat/completions`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body), signal: leaver.signal}).catch(() => undefined);
    await sleep(15); // not synchronisation: the client gives up while the prompt is being evaluated
    leaver.abort();
    await abandoned;
    const retries = await Promise.all(
      Array.from({length: 12}, async (_, i) => {
        const res = await fetch(`${server.url}/v1/chat/completions`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({...body, stream: i % 2 === 1}), signal: AbortSignal.timeout(10_000)});
        return {status: res.status, text: await res.text(), stream: i % 2 === 1};
      })
    );
    for (const r of retries) {
      expect(r.status).toBe(200);
      if (r.stream) expect(r.text.trimEnd().endsWith("data: [DONE]")).toBe(true);
      else expect((JSON.parse(r.text) as {choices: Array<{finish_reason: string}>}).choices[0]!.finish_reason).toMatch(/^(stop|length)$/);
    }
  });
});

describe("response cache in Redis", () => {
  let redis: RedisProcess;
  beforeAll(async () => (redis = await RedisProcess.start()));
  afterAll(() => redis.stop());
  beforeEach(() => redis.client.flushall());

  const withServers = async (count: number, env: Record<string, string>, run: (servers: ServerProcess[]) => Promise<void>) => {
    const servers = await Promise.all(Array.from({length: count}, () => ServerProcess.start({REDIS_URL: redis.url, CACHE_NAMESPACE: "svc-a", ...env})));
    try {
      await Promise.all(servers.map(waitModelDigest));
      await run(servers);
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  };

  it("lets two replicas serve each other's entries", async () => {
    await withServers(2, {}, async ([a, b]) => {
      const first = await chat(clientFor(a!), greedy("Two replicas"));
      const second = await chat(clientFor(b!), greedy("Two replicas"));
      expect([first.cache, second.cache]).toEqual(["MISS", "HIT"]);
      expect(second.text).toBe(first.text);
      expect(await redis.client.keys("paddock:svc-a:*")).toHaveLength(1);
    });
  });

  it("never shares entries between tenants (API keys)", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "paddock-keys-")), "keys");
    writeFileSync(file, "sk-tenant-a\nsk-tenant-b\n");
    await withServers(1, {API_KEYS_FILE: file}, async ([server]) => {
      const a = clientFor(server!, "sk-tenant-a");
      const b = clientFor(server!, "sk-tenant-b");
      expect((await chat(a, greedy("Secret story"))).cache).toBe("MISS");
      expect((await chat(a, greedy("Secret story"))).cache).toBe("HIT");
      expect((await chat(b, greedy("Secret story"))).cache).toBe("MISS");
      expect(await redis.client.keys("paddock:svc-a:*")).toHaveLength(2);
    });
  });

  it("expires entries after CACHE_TTL_SECONDS", async () => {
    await withServers(1, {CACHE_TTL_SECONDS: "1"}, async ([server]) => {
      const client = clientFor(server!);
      await chat(client, greedy("Short life"));
      const [key] = await redis.client.keys("paddock:svc-a:*");
      expect(await redis.client.ttl(key!)).toBe(1);
      expect((await chat(client, greedy("Short life"))).cache).toBe("HIT");
      await sleep(2_100);
      expect((await chat(client, greedy("Short life"))).cache).toBe("MISS");
    });
  });

  it("leaves nothing in Redis for no-store requests", async () => {
    await withServers(1, {}, async ([server]) => {
      const res = await chat(clientFor(server!), greedy("Private"), {"cache-control": "no-store"});
      expect(res.cache).toBe("BYPASS");
      // Entries are stored before their response ends (read-your-writes), so one would be there now.
      expect(await redis.client.dbsize()).toBe(0);
    });
  });

  it("treats malformed or foreign data under a key as a miss, then heals it", async () => {
    await withServers(1, {}, async ([server]) => {
      const client = clientFor(server!);
      const original = await chat(client, greedy("Broken entry"));
      const [key] = await redis.client.keys("paddock:svc-a:*");
      await redis.client.set(key!, '{"v":1,"chunks":"not an array"}');
      const afterCorruption = await chat(client, greedy("Broken entry"));
      expect(afterCorruption.cache).toBe("MISS");
      expect(afterCorruption.text).toBe(original.text);
      expect((await chat(client, greedy("Broken entry"))).cache).toBe("HIT");
    });
  });

  it("bounds a slow Redis by the command timeout: the request is served by the model", async () => {
    await withServers(1, {CACHE_REDIS_TIMEOUT_MS: "50"}, async ([server]) => {
      const client = clientFor(server!);
      await redis.stall(3);
      const started = Date.now();
      const res = await chat(client, greedy("Slow redis"));
      const elapsed = Date.now() - started;
      expect(res.cache).toBe("BYPASS");
      expect(res.text!.length).toBeGreaterThan(0);
      // Generous bound for a loaded CI machine; the point is "not the 3 s Redis is stalled for".
      expect(elapsed).toBeLessThan(2_000);
      expect(await metric(server!, 'llm_cache_errors_total{op="get"}')).toBe(1);
    });
  });

  it("keeps answering every request while Redis is dead, and resumes caching when it returns", async () => {
    await withServers(1, {}, async ([server]) => {
      const client = clientFor(server!);
      await chat(client, greedy("Before outage"));
      await redis.kill();
      const during = await Promise.all(["Before outage", "During outage", "During outage"].map((p) => chat(client, greedy(p))));
      expect(during.map((r) => r.cache)).toEqual(["BYPASS", "BYPASS", "BYPASS"]);
      expect(during.every((r) => typeof r.text === "string" && r.text.length > 0)).toBe(true);
      expect(await metric(server!, 'llm_cache_errors_total{op="get"}')).toBeGreaterThanOrEqual(3);
      expect(await metric(server!, 'llm_requests_total{endpoint="chat",status="200"}')).toBe(4);

      await redis.restart();
      // ioredis reconnects in the background (back-off up to 2 s); the cache comes back by itself.
      const deadline = Date.now() + 10_000;
      let status: string | null = "BYPASS";
      while (status === "BYPASS" && Date.now() < deadline) {
        status = (await chat(client, greedy("After outage"))).cache;
        if (status === "BYPASS") await sleep(200);
      }
      expect(status).toBe("MISS");
      expect((await chat(client, greedy("After outage"))).cache).toBe("HIT");
    });
  });
});
