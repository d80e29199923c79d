import {mkdtempSync, rmSync, statSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {TINY_MODEL} from "../../dev/paths.js";
import {GGML, readGguf, tensorBytes} from "../../dev/models/gguf.js";
import {llamaTensors, parameterCount, SHAPES, toHalf, writeSyntheticModel} from "../../dev/models/synthetic.js";

describe("GGUF reading and synthetic models", () => {
  const dir = mkdtempSync(join(tmpdir(), "gguf-"));
  afterAll(() => rmSync(dir, {recursive: true, force: true}));

  it("reads the tiny model's metadata and tensors", () => {
    const tiny = readGguf(TINY_MODEL);
    expect(tiny.metadata.get("general.architecture")?.value).toBe("llama");
    expect((tiny.metadata.get("tokenizer.ggml.tokens")?.value as string[]).length).toBe(512);
    expect(tiny.tensors).toHaveLength(48);
    expect(tiny.tensors.reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0)).toBe(292_800);
  });

  it("lays out the tiny shape exactly as stories260K does (names, dimensions)", () => {
    const tiny = readGguf(TINY_MODEL);
    const ours = llamaTensors(SHAPES["tiny"]!, 512, GGML.f32);
    const byName = (ts: ReadonlyArray<{name: string; dims: readonly number[]}>) => Object.fromEntries(ts.map((t) => [t.name, t.dims]));
    expect(byName(ours)).toEqual(byName(tiny.tensors));
  });

  it.each([["f32"], ["f16"], ["q8_0"]] as const)("writes a %s model that reads back with the tokenizer and the sizes it announced", (type) => {
    const out = join(dir, `m-${type}.gguf`);
    const shape = {...SHAPES["tiny"]!, embedding: 64, feedForward: 192};
    const {parameters} = writeSyntheticModel({shape, tokenizerFrom: TINY_MODEL, out, type, seed: 7});
    const back = readGguf(out);
    expect(parameters).toBe(parameterCount(shape, 512));
    expect(back.metadata.get("llama.embedding_length")?.value).toBe(64);
    expect(back.metadata.get("tokenizer.ggml.tokens")?.value).toEqual(readGguf(TINY_MODEL).metadata.get("tokenizer.ggml.tokens")?.value);
    expect(back.tensors.filter((t) => t.dims.length === 2).every((t) => t.type === GGML[type])).toBe(true);
    const data = back.tensors.reduce((n, t) => n + Math.ceil(tensorBytes(t) / 32) * 32, 0);
    expect(statSync(out).size).toBeGreaterThan(data);
    expect(statSync(out).size).toBeLessThan(data + 64 * 1024);
  });

  it("is deterministic for a seed", () => {
    const a = join(dir, "a.gguf");
    const b = join(dir, "b.gguf");
    writeSyntheticModel({shape: SHAPES["tiny"]!, tokenizerFrom: TINY_MODEL, out: a, seed: 3});
    writeSyntheticModel({shape: SHAPES["tiny"]!, tokenizerFrom: TINY_MODEL, out: b, seed: 3});
    expect(statSync(a).size).toBe(statSync(b).size);
  });

  it("converts to half precision", () => {
    expect(toHalf(1)).toBe(0x3c00);
    expect(toHalf(-2)).toBe(0xc000);
    expect(toHalf(0.5)).toBe(0x3800);
    expect(toHalf(1e-9)).toBe(0);
  });

  it("counts the named shapes' parameters", () => {
    expect(parameterCount(SHAPES["20m"]!, 512) / 1e6).toBeCloseTo(19.5, 0);
    expect(parameterCount(SHAPES["110m"]!, 512) / 1e6).toBeCloseTo(113, -1);
    expect(parameterCount(SHAPES["8b"]!, 512) / 1e9).toBeCloseTo(7, 0);
  });
});
