import {mkdtempSync, readdirSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {parseMetrics, sample} from "../../dev/metrics-text.js";
import {TINY_MODEL_NAME} from "../../dev/paths.js";
import {ServerProcess} from "../../dev/processes/server.js";

/**
 * The prompt cache on the real server and tiny model: one slot, so every other prompt
 * overwrites it. Requests run alone (greedy text is comparable) and bypass the response
 * cache (no-store): what is reused here is the slot's saved KV state.
 */
describe("prompt cache (saved slot states)", () => {
  let server: ServerProcess;
  const dir = join(mkdtempSync(join(tmpdir(), "paddock-prompt-cache-test-")), "states");
  const keys = join(mkdtempSync(join(tmpdir(), "paddock-keys-")), "keys");
  writeFileSync(keys, "sk-tenant-a\nsk-tenant-b\n");

  beforeAll(async () => {
    server = await ServerProcess.start({PARALLEL_SLOTS: "1", PROMPT_CACHE_DIR: dir, PROMPT_CACHE_MIN_TOKENS: "32", API_KEYS_FILE: keys});
  });
  afterAll(() => server.stop());

  const story = "Once upon a time there was a little girl who lived in a small house near the woods. ".repeat(8);
  const ask = async (prompt: string, key = "sk-tenant-a") => {
    const res = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: {"content-type": "application/json", "cache-control": "no-store", authorization: `Bearer ${key}`},
      body: JSON.stringify({model: TINY_MODEL_NAME, prompt, max_tokens: 12, temperature: 0})
    });
    expect(res.status).toBe(200);
    return (await res.json()) as {choices: Array<{text: string}>; usage: {prompt_tokens: number; prompt_tokens_details: {cached_tokens: number}}};
  };
  const ops = async () => {
    const m = parseMetrics(await server.metrics());
    const op = (name: string) => sample(m, `llm_prompt_cache_operations_total{op="${name}"}`);
    return {save: op("save"), restore: op("restore"), bytes: sample(m, "llm_prompt_cache_bytes")};
  };

  it("restores a prompt whose slot another prompt took, with the same text as when it was evaluated", async () => {
    const first = await ask(story);
    expect(first.usage.prompt_tokens).toBeGreaterThan(100);
    // Another prompt takes the only slot: what it held is saved first.
    await ask("The big red dog ran to the park and played all day long with the ball. ".repeat(4));
    const saved = await ops();
    expect(saved.save).toBeGreaterThanOrEqual(1);
    expect(saved.bytes).toBeGreaterThan(0);
    expect(readdirSync(dir).length).toBeGreaterThanOrEqual(1);

    const again = await ask(story);
    expect(again.usage.prompt_tokens_details.cached_tokens).toBe(again.usage.prompt_tokens - 1);
    expect(again.choices[0]!.text).toBe(first.choices[0]!.text);
    expect((await ops()).restore).toBe(saved.restore + 1);
  });

  it("never restores one tenant's saved state for another", async () => {
    const mine = `${story} My own tale.`;
    await ask(mine, "sk-tenant-a");
    await ask("A cat sat on a mat and looked at the sun in the sky for a long time. ".repeat(4), "sk-tenant-a");
    const before = await ops();
    const theirs = await ask(mine, "sk-tenant-b");
    // Tenant b evaluates the prompt itself (the slot held tenant a's other prompt: only the start is shared).
    expect(theirs.usage.prompt_tokens_details.cached_tokens).toBeLessThan(theirs.usage.prompt_tokens / 2);
    expect((await ops()).restore).toBe(before.restore);
    // Tenant a still gets it back.
    await ask("A cat sat on a mat and looked at the sun in the sky for a long time. ".repeat(4), "sk-tenant-a");
    const back = await ask(mine, "sk-tenant-a");
    expect(back.usage.prompt_tokens_details.cached_tokens).toBe(back.usage.prompt_tokens - 1);
  });

  it("restores a state into another slot than the one it was saved from", async () => {
    const two = await ServerProcess.start({PARALLEL_SLOTS: "2", PROMPT_CACHE_MIN_TOKENS: "32"});
    try {
      const send = async (prompt: string) => {
        const res = await fetch(`${two.url}/v1/completions`, {
          method: "POST",
          headers: {"content-type": "application/json", "cache-control": "no-store"},
          body: JSON.stringify({model: TINY_MODEL_NAME, prompt, max_tokens: 12, temperature: 0})
        });
        return (await res.json()) as {choices: Array<{text: string}>; usage: {prompt_tokens: number; prompt_tokens_details: {cached_tokens: number}}};
      };
      const other = (n: number) => `Number ${n}: a bird flew over the tall green trees and sang a happy song. `.repeat(4);
      // Slots are taken least recently used first: A goes to the first, B to the second, C
      // to the first again (A is saved), and A's return finds B's slot the oldest.
      const first = await send(story);
      await send(other(1));
      await send(other(2));
      const again = await send(story);
      expect(again.usage.prompt_tokens_details.cached_tokens).toBe(again.usage.prompt_tokens - 1);
      expect(again.choices[0]!.text).toBe(first.choices[0]!.text);
    } finally {
      await two.stop();
    }
  });
});
