import {cacheKey, canonicalJson, type ModelIdentity} from "../../inference-image/src/cache/cache-key.js";
import {decideCaching} from "../../inference-image/src/cache/cache-policy.js";
import {decodeEntry, encodeEntry} from "../../inference-image/src/cache/cache-store.js";
import {MemoryStore} from "../../inference-image/src/cache/memory-store.js";
import {parseChatRequest} from "../../inference-image/src/openai/chat-request.js";
import {parseCompletionRequest} from "../../inference-image/src/openai/completion-request.js";

const model: ModelIdentity = {name: "tiny", digest: "a".repeat(64), chatWrapper: "auto", contextSize: 2048};
const chat = (extra: Record<string, unknown> = {}) =>
  parseChatRequest({model: "tiny", messages: [{role: "user", content: "hi"}], temperature: 0, ...extra});

describe("cache key", () => {
  it("ignores fields that do not change the output: stream, user, key order", () => {
    const base = cacheKey(chat(), model, "open");
    expect(cacheKey(chat({stream: true, stream_options: {include_usage: true}}), model, "open")).toBe(base);
    expect(cacheKey(chat({user: "someone"}), model, "open")).toBe(base);
    const reordered = parseChatRequest(JSON.parse('{"temperature":0,"messages":[{"content":"hi","role":"user"}],"model":"tiny"}'));
    expect(cacheKey(reordered, model, "open")).toBe(base);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([
    ["temperature", {temperature: 0.5}],
    ["top_p", {top_p: 0.9}],
    ["top_k", {top_k: 5}],
    ["seed", {seed: 1}],
    ["max_tokens", {max_tokens: 9}],
    ["stop", {stop: ["x"]}],
    ["presence_penalty", {presence_penalty: 0.5}],
    ["frequency_penalty", {frequency_penalty: 0.5}],
    ["messages", {messages: [{role: "user", content: "hello"}]}]
  ])("changes with %s", (_field, extra) => {
    expect(cacheKey(chat(extra), model, "open")).not.toBe(cacheKey(chat(), model, "open"));
  });

  it("changes with the tenant, the model file, the chat template, the context size and the endpoint", () => {
    const base = cacheKey(chat(), model, "open");
    expect(cacheKey(chat(), model, "tenant-b")).not.toBe(base);
    expect(cacheKey(chat(), {...model, digest: "b".repeat(64)}, "open")).not.toBe(base);
    expect(cacheKey(chat(), {...model, chatWrapper: "chatML"}, "open")).not.toBe(base);
    expect(cacheKey(chat(), {...model, contextSize: 4096}, "open")).not.toBe(base);
    const text = parseCompletionRequest({model: "tiny", prompt: "hi", temperature: 0});
    expect(cacheKey(text, model, "open")).not.toBe(cacheKey({...text, endpoint: "generate"}, model, "open"));
  });

  it("encodes objects canonically", () => {
    expect(canonicalJson({b: 1, a: {d: [1, {f: 2, e: 3}], c: null}})).toBe('{"a":{"c":null,"d":[1,{"e":3,"f":2}]},"b":1}');
  });
});

describe("cache policy", () => {
  const params = (p: Record<string, unknown>) => chat(p).params;

  it("caches greedy and seeded requests in deterministic mode, bypasses sampled ones", () => {
    expect(decideCaching("deterministic", params({temperature: 0}), undefined)).toEqual({lookup: true, store: true});
    expect(decideCaching("deterministic", params({temperature: 0.8, seed: 7}), undefined)).toEqual({lookup: true, store: true});
    expect(decideCaching("deterministic", params({temperature: 0.8}), undefined)).toMatchObject({lookup: false, store: false});
  });

  it("caches everything in 'all' mode and nothing when off", () => {
    expect(decideCaching("all", params({temperature: 0.8}), undefined)).toEqual({lookup: true, store: true});
    expect(decideCaching("off", params({temperature: 0}), undefined)).toMatchObject({lookup: false, store: false});
  });

  it("honours Cache-Control: no-cache refreshes, no-store neither reads nor writes", () => {
    expect(decideCaching("deterministic", params({}), "no-cache")).toEqual({lookup: false, store: true});
    expect(decideCaching("deterministic", params({}), "max-age=0, No-Store")).toMatchObject({lookup: false, store: false});
  });
});

describe("cache entries", () => {
  const record = {chunks: ["Once", " upon"], finishReason: "stop" as const, promptTokens: 3, completionTokens: 2};

  it("round-trips a completion record", () => {
    expect(decodeEntry(encodeEntry(record))).toEqual(record);
  });

  it.each(["", "not json", "null", "[]", '{"v":1,"chunks":[],"finishReason":"stop","promptTokens":1,"completionTokens":1}', '{"v":1,"chunks":"x"}'])(
    "reads malformed or foreign data %j as a miss",
    (raw) => {
      expect(decodeEntry(raw)).toBeUndefined();
    }
  );
});

describe("MemoryStore", () => {
  it("evicts least recently used entries to stay within its byte bound", async () => {
    const sizes: number[] = [];
    const store = new MemoryStore(30, Date.now, (b) => sizes.push(b));
    await store.set("a", "1234567890", 60); // 11 bytes
    await store.set("b", "1234567890", 60); // 22
    await store.get("a"); // a is now the most recently used
    await store.set("c", "1234567890", 60); // 33 > 30: evicts b
    expect(await store.get("a")).toBeDefined();
    expect(await store.get("b")).toBeUndefined();
    expect(await store.get("c")).toBeDefined();
    expect(store.bytes).toBe(22);
    expect(sizes.at(-1)).toBe(22);
  });

  it("never stores an entry larger than the bound", async () => {
    const store = new MemoryStore(10);
    await store.set("k", "x".repeat(20), 60);
    expect(await store.get("k")).toBeUndefined();
    expect(store.bytes).toBe(0);
  });

  it("expires entries by its clock", async () => {
    let now = 1_000;
    const store = new MemoryStore(1000, () => now);
    await store.set("k", "v", 10);
    now += 9_999;
    expect(await store.get("k")).toBe("v");
    now += 1;
    expect(await store.get("k")).toBeUndefined();
    expect(store.bytes).toBe(0);
  });
});
