import {mkdtempSync, rmSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {TINY_MODEL} from "../../dev/paths.js";
import {SHAPES, writeSyntheticModel} from "../../dev/models/synthetic.js";
import {ServerProcess} from "../../dev/processes/server.js";

/**
 * Usage on a model whose tokens often end inside a UTF-8 character: the tiny model's shape
 * and tokenizer with random weights (dev/models/synthetic.ts) samples byte-fallback tokens
 * freely, which the trained tiny model almost never does.
 */
describe("usage counts every generated token", () => {
  const dir = mkdtempSync(join(tmpdir(), "usage-"));
  const model = join(dir, "random-tiny.gguf");
  let server: ServerProcess;
  beforeAll(async () => {
    writeSyntheticModel({shape: SHAPES["tiny"]!, tokenizerFrom: TINY_MODEL, out: model, seed: 1});
    server = await ServerProcess.start({MODEL_PATH: model, MODEL_NAME: "random"});
  });
  afterAll(async () => {
    await server.stop();
    rmSync(dir, {recursive: true, force: true});
  });

  type Completion = {choices: Array<{text: string; finish_reason: string}>; usage: {completion_tokens: number; prompt_tokens: number}};
  const complete = async (prompt: string, maxTokens: number, stream = false) => {
    const res = await fetch(`${server.url}/v1/completions`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: "random", prompt, max_tokens: maxTokens, temperature: 0, stream, ...(stream ? {stream_options: {include_usage: true}} : {})})});
    if (!stream) return (await res.json()) as Completion;
    const events = (await res.text()).split("\n").filter((l) => l.startsWith("data: {")).map((l) => JSON.parse(l.slice(6)) as Partial<Completion>);
    return {choices: [{text: events.map((e) => e.choices?.[0]?.text ?? "").join(""), finish_reason: events.map((e) => e.choices?.[0]?.finish_reason).filter(Boolean).at(-1)!}], usage: events.find((e) => e.usage)!.usage!};
  };

  it("counts tokens that end inside a character, streamed or not, and never sends half a character", async () => {
    let partial = 0;
    for (const prompt of ["Hello", "Once upon a time", "x", "The", "A big dog"]) {
      for (const maxTokens of [1, 2, 3, 4, 8]) {
        const plain = await complete(prompt, maxTokens);
        const streamed = await complete(prompt, maxTokens, true);
        for (const r of [plain, streamed]) {
          expect(r.choices[0]!.finish_reason).toBe("length");
          // max_tokens generated; node-llama-cpp may sample one more to finish a character.
          expect(r.usage.completion_tokens).toBeGreaterThanOrEqual(maxTokens);
          expect(r.usage.completion_tokens).toBeLessThanOrEqual(maxTokens + 1);
          expect(r.choices[0]!.text.endsWith("\ufffd")).toBe(false);
        }
        expect({...streamed.usage, prompt_tokens_details: undefined}).toEqual({...plain.usage, prompt_tokens_details: undefined});
        expect(streamed.choices[0]!.text).toBe(plain.choices[0]!.text);
        if (Buffer.byteLength(plain.choices[0]!.text) < maxTokens) partial++;
      }
    }
    // The case under test happened: fewer text bytes than tokens.
    expect(partial).toBeGreaterThan(0);
  });
});
