import OpenAI from "openai";
import {TINY_MODEL_NAME} from "../../dev/paths.js";
import {ServerProcess} from "../../dev/processes/server.js";

/**
 * FLASH_ATTENTION on and off answer alike, on prompts long enough for flash attention's tiled
 * path (inference-image/patches/*-llama.cpp-fa-tiled-x86.patch: ggml now takes it for the tiny
 * model's 8-wide heads, which fell back to one query at a time before). Two servers on the
 * tiny model, one request at a time (batched decoding is not bitwise deterministic), the
 * same long chat: the greedy replies are the same text and their first token's top
 * log probabilities agree, the way a user comparing the two settings would check. What the
 * patch changes is speed (bench:llama-builds, bench:data-plane's long-prompt table); this
 * guards the answers of the path it opens, whose last columns a new masked kernel computes.
 */
describe("flash attention on and off", () => {
  let servers: Record<"on" | "off", ServerProcess>;
  beforeAll(async () => {
    const start = (mode: "on" | "off") => ServerProcess.start({FLASH_ATTENTION: mode, PARALLEL_SLOTS: "1", CACHE_MODE: "off"});
    const [on, off] = await Promise.all([start("on"), start("off")]);
    servers = {on, off};
  });
  afterAll(() => Promise.all(Object.values(servers).map((s) => s.stop())));

  // About 1,100 of the tiny model's tokens: many 8-wide heads' query and KV tiles, the last
  // of them partial (the tile sizes are powers of two).
  const system = "You are a story teller. Tell short, kind stories for small children, with simple words. ".repeat(21);
  const ask = async (mode: "on" | "off", user: string) => {
    const client = new OpenAI({baseURL: `${servers[mode].url}/v1`, apiKey: "unused", maxRetries: 0});
    const res = await client.chat.completions.create({model: TINY_MODEL_NAME, messages: [{role: "system", content: system}, {role: "user", content: user}], max_tokens: 24, temperature: 0, logprobs: true, top_logprobs: 5});
    return {usage: res.usage!, text: res.choices[0]!.message.content!, first: res.choices[0]!.logprobs!.content![0]!.top_logprobs};
  };

  it.each(["Tell me a story about a cat.", "Once upon a time there was a little dog who"])("the same reply and first-token logprobs for a 1,100-token chat (%s)", async (user) => {
    const on = await ask("on", user);
    const off = await ask("off", user);
    expect(on.usage.prompt_tokens).toBeGreaterThan(1000);
    expect(on.text.length).toBeGreaterThan(0);
    expect(on.text).toBe(off.text);
    expect(on.first.map((t) => t.token)).toEqual(off.first.map((t) => t.token));
    // The two sum in different orders over an f16 KV cache: 0.011 apart at most, measured.
    for (const [i, t] of on.first.entries()) expect(Math.abs(t.logprob - off.first[i]!.logprob)).toBeLessThan(0.03);
  });
});
