import {GGML, readGguf, VALUE, writeGguf, type GgmlType, type Metadata, type Scalar, type TensorInfo} from "./gguf.js";

/**
 * Synthetic llama-architecture models: real shapes, seeded random weights, the tokenizer of
 * a given GGUF (the tiny test model's). Output is gibberish, but the compute per token is
 * that of a real model of the shape, so benchmarks and GPU runs can use realistic sizes
 * where no real weights can be carried. Random weights also produce any token, byte-
 * fallback tokens included, which the tiny model's trained weights almost never do.
 */
export interface Shape {
  readonly embedding: number;
  readonly blocks: number;
  readonly feedForward: number;
  readonly heads: number;
  readonly kvHeads: number;
  /** Default tensor type of the matrices (norms are always F32). */
  readonly type: keyof typeof GGML;
}

/** Named shapes. `tiny` is stories260K's; 1b and 8b follow Llama 3.2 1B and Llama 3 8B. */
export const SHAPES: Readonly<Record<string, Shape>> = {
  tiny: {embedding: 64, blocks: 5, feedForward: 172, heads: 8, kvHeads: 4, type: "f32"},
  "20m": {embedding: 512, blocks: 6, feedForward: 1376, heads: 8, kvHeads: 8, type: "f32"},
  "110m": {embedding: 768, blocks: 12, feedForward: 3072, heads: 12, kvHeads: 12, type: "f16"},
  "1b": {embedding: 2048, blocks: 16, feedForward: 8192, heads: 32, kvHeads: 8, type: "q8_0"},
  "8b": {embedding: 4096, blocks: 32, feedForward: 14336, heads: 32, kvHeads: 8, type: "q8_0"}
};

export interface SyntheticOptions {
  readonly shape: Shape;
  /** GGUF whose tokenizer (tokenizer.* metadata) the model gets. */
  readonly tokenizerFrom: string;
  readonly out: string;
  /** Matrix tensor type. Defaults to the shape's. */
  readonly type?: keyof typeof GGML;
  /** Context length written to the metadata. Defaults to 2048. */
  readonly contextLength?: number;
  /** PRNG seed; the same seed gives the same file. Defaults to 1. */
  readonly seed?: number;
  readonly name?: string;
  /**
   * Zero the output rows of byte-fallback tokens, so they never win a greedy step: random
   * weights otherwise often settle on one byte token that never forms a character, and a
   * server then streams no text at all (no TTFT to measure). Defaults to false (tests of
   * partial characters want them).
   */
  readonly textOnly?: boolean;
  /**
   * Grow the borrowed tokenizer's vocabulary to this many tokens (`▁s<i>` words, normal
   * tokens with falling scores), as a Llama-3 (128,256) or Qwen (151,936) model has: the
   * output layer and every per-token cost that scales with the vocabulary become real
   * (issue #26's logprobs). Defaults to the tokenizer's own size.
   */
  readonly vocab?: number;
}

const FILE_TYPE = {f32: 0, f16: 1, q8_0: 7} as const;

/** The tensors of a llama model of this shape, in the order llama.cpp's converter writes them. */
export function llamaTensors(shape: Shape, vocab: number, type: GgmlType): TensorInfo[] {
  const {embedding: e, feedForward: f, heads, kvHeads} = shape;
  const kv = (e / heads) * kvHeads;
  const t = (name: string, dims: number[], ty: GgmlType = type): TensorInfo => ({name, dims, type: ty});
  const tensors = [t("token_embd.weight", [e, vocab])];
  for (let i = 0; i < shape.blocks; i++) {
    tensors.push(
      t(`blk.${i}.attn_norm.weight`, [e], GGML.f32),
      t(`blk.${i}.attn_q.weight`, [e, e]),
      t(`blk.${i}.attn_k.weight`, [e, kv]),
      t(`blk.${i}.attn_v.weight`, [e, kv]),
      t(`blk.${i}.attn_output.weight`, [e, e]),
      t(`blk.${i}.ffn_norm.weight`, [e], GGML.f32),
      t(`blk.${i}.ffn_gate.weight`, [e, f]),
      t(`blk.${i}.ffn_down.weight`, [f, e]),
      t(`blk.${i}.ffn_up.weight`, [e, f])
    );
  }
  tensors.push(t("output_norm.weight", [e], GGML.f32), t("output.weight", [e, vocab]));
  return tensors;
}

/** Parameters (tensor elements) of a shape. */
export function parameterCount(shape: Shape, vocab: number): number {
  return llamaTensors(shape, vocab, GGML.f32).reduce((n, t) => n + t.dims.reduce((a, b) => a * b, 1), 0);
}

/** Appends normal tokens to tokenizer.ggml.tokens, .scores and .token_type until `vocab`. */
function growVocabulary(metadata: Metadata, vocab: number): void {
  const NORMAL = 1;
  const list = (key: string) => metadata.get(key)!.value as readonly Scalar[];
  const tokens = [...list("tokenizer.ggml.tokens")];
  const scores = [...((metadata.get("tokenizer.ggml.scores")?.value as number[] | undefined) ?? tokens.map(() => 0))];
  const types = [...((metadata.get("tokenizer.ggml.token_type")?.value as number[] | undefined) ?? tokens.map(() => NORMAL))];
  const lowest = Math.min(0, ...scores);
  for (let i = tokens.length; i < vocab; i++) {
    tokens.push(`\u2581s${i}`);
    scores.push(lowest - 1 - i);
    types.push(NORMAL);
  }
  metadata.set("tokenizer.ggml.tokens", {...metadata.get("tokenizer.ggml.tokens")!, value: tokens});
  metadata.set("tokenizer.ggml.scores", {type: VALUE.array, itemType: VALUE.f32, value: scores});
  metadata.set("tokenizer.ggml.token_type", {type: VALUE.array, itemType: VALUE.i32, value: types});
}

/** Writes the model; returns its parameter count. Seconds for small shapes, streamed for large ones. */
export function writeSyntheticModel(options: SyntheticOptions): {parameters: number; tensors: number} {
  const source = readGguf(options.tokenizerFrom);
  const tokens = source.metadata.get("tokenizer.ggml.tokens");
  if (!tokens || !Array.isArray(tokens.value)) throw new Error(`${options.tokenizerFrom} has no tokenizer.ggml.tokens`);
  const vocab = Math.max(tokens.value.length, options.vocab ?? 0);
  const {shape} = options;
  if (shape.embedding % shape.heads !== 0 || shape.heads % shape.kvHeads !== 0) throw new Error("embedding must divide into heads, and heads into kvHeads groups");
  const typeName = options.type ?? shape.type;
  const type = GGML[typeName];
  const metadata: Metadata = new Map();
  const u32 = (value: number) => ({type: VALUE.u32, value});
  metadata.set("general.architecture", {type: VALUE.string, value: "llama"});
  metadata.set("general.name", {type: VALUE.string, value: options.name ?? "synthetic"});
  metadata.set("general.file_type", u32(FILE_TYPE[typeName]));
  metadata.set("llama.context_length", u32(options.contextLength ?? 2048));
  metadata.set("llama.embedding_length", u32(shape.embedding));
  metadata.set("llama.block_count", u32(shape.blocks));
  metadata.set("llama.feed_forward_length", u32(shape.feedForward));
  metadata.set("llama.rope.dimension_count", u32(shape.embedding / shape.heads));
  metadata.set("llama.attention.head_count", u32(shape.heads));
  metadata.set("llama.attention.head_count_kv", u32(shape.kvHeads));
  metadata.set("llama.attention.layer_norm_rms_epsilon", {type: VALUE.f32, value: 1e-5});
  metadata.set("llama.vocab_size", u32(vocab));
  for (const [key, value] of source.metadata) if (key.startsWith("tokenizer.")) metadata.set(key, value);
  if (vocab > tokens.value.length) growVocabulary(metadata, vocab);

  const tensors = llamaTensors(shape, vocab, type);
  const random = prng(options.seed ?? 1);
  const BYTE = 6; // tokenizer.ggml.token_type of byte-fallback tokens
  const types = (source.metadata.get("tokenizer.ggml.token_type")?.value ?? []) as readonly number[];
  const byteTokens = options.textOnly ? new Set(types.flatMap((t, i) => (Number(t) === BYTE ? [i] : []))) : new Set<number>();
  writeGguf(options.out, {metadata, tensors}, (t, write) => fillTensor(t, random, write, t.name === "output.weight" ? byteTokens : new Set()));
  return {parameters: parameterCount(shape, vocab), tensors: tensors.length};
}

const CHUNK_ELEMENTS = 1 << 20;

/**
 * Random weights scaled like an initialised network (uniform in +-1/sqrt(fan-in)), so
 * activations stay finite through every block; norms are 1.
 */
function fillTensor(t: TensorInfo, random: () => number, write: (chunk: Uint8Array) => void, zeroRows: ReadonlySet<number>): void {
  const n = t.dims.reduce((a, b) => a * b, 1);
  const rowLength = t.dims[0]!;
  const bound = 1 / Math.sqrt(rowLength);
  const isNorm = t.dims.length === 1;
  const zero = (element: number) => zeroRows.size > 0 && zeroRows.has(Math.floor(element / rowLength));
  if (t.type === GGML.f32) {
    for (let done = 0; done < n; done += CHUNK_ELEMENTS) {
      const chunk = new Float32Array(Math.min(CHUNK_ELEMENTS, n - done));
      for (let i = 0; i < chunk.length; i++) chunk[i] = isNorm ? 1 : zero(done + i) ? 0 : ((random() / 0x1_0000_0000) * 2 - 1) * bound;
      write(new Uint8Array(chunk.buffer));
    }
  } else if (t.type === GGML.f16) {
    for (let done = 0; done < n; done += CHUNK_ELEMENTS) {
      const chunk = new Uint16Array(Math.min(CHUNK_ELEMENTS, n - done));
      for (let i = 0; i < chunk.length; i++) chunk[i] = zero(done + i) ? 0 : toHalf(((random() / 0x1_0000_0000) * 2 - 1) * bound);
      write(new Uint8Array(chunk.buffer));
    }
  } else if (t.type === GGML.q8_0) {
    // Blocks of 32: an f16 scale, then 32 int8 quants. Random bytes make uniform quants.
    const scale = toHalf(bound / 127);
    const blocks = n / 32;
    const perChunk = CHUNK_ELEMENTS / 32;
    for (let done = 0; done < blocks; done += perChunk) {
      const count = Math.min(perChunk, blocks - done);
      const bytes = new Uint8Array(count * 34);
      const words = new Uint32Array(8);
      for (let b = 0; b < count; b++) {
        const at = b * 34;
        if (zero((done + b) * 32)) continue; // all-zero block: scale 0
        bytes[at] = scale & 0xff;
        bytes[at + 1] = scale >> 8;
        for (let w = 0; w < 8; w++) words[w] = random();
        bytes.set(new Uint8Array(words.buffer), at + 2);
      }
      write(bytes);
    }
  } else {
    throw new Error(`${t.name}: cannot fill ggml type ${t.type}`);
  }
}

/** xorshift128 (seeded through splitmix32): fast, deterministic, uint32 per call. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  const split = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = split() || 1;
  let b = split();
  let c = split();
  let d = split();
  return () => {
    const t = a ^ (a << 11);
    a = b;
    b = c;
    c = d;
    d = (d ^ (d >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return d;
  };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 half from a float (round toward zero; weights here are far from the edges). */
export function toHalf(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = ((x >>> 23) & 0xff) - 127 + 15;
  const mantissa = x & 0x7fffff;
  if (exponent <= 0) return sign; // too small: zero
  if (exponent >= 31) return sign | 0x7c00; // too large: infinity
  return sign | (exponent << 10) | (mantissa >>> 13);
}
