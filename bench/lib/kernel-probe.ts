/**
 * One llama.cpp build, in-process, without any server: prompt processing (pp: a 256-token
 * prompt evaluated from an empty sequence) and single-sequence decoding (tg: 96 greedy tokens
 * after a 256-token prompt), as llama-bench measures `-p 256` and `-n 96 -d 256`, after a
 * warm-up as llama-bench's. Run as a child process per build (bench/llama-builds.ts), pinned
 * to one core, printing one JSON line.
 * With `phases`, one more decode pass times the two native calls each token makes
 * (llama_decode on a libuv worker, then sampleToken on another) against the whole token
 * (bench/decode-phases.ts), and a bare loop through the addon times the floor under them.
 *   node dist/bench/lib/kernel-probe.js '{"model": "...", "cmakeOptions": {...}, "threads": 1, "flashAttention": true}'
 * With `nodeLlamaCpp` (a path to a copy's dist/index.js) it runs that copy of the package.
 */
import type {Token} from "node-llama-cpp";
import type {DecodePhases} from "./peers.js";

const {
  model: modelPath,
  cmakeOptions,
  threads = 1,
  reps = 3,
  flashAttention = false,
  generate = 96,
  phases = false,
  nodeLlamaCpp
} = JSON.parse(process.argv[2] ?? "{}") as {
  model: string;
  cmakeOptions?: Record<string, string>;
  threads?: number;
  reps?: number;
  flashAttention?: boolean;
  generate?: number;
  phases?: boolean;
  /** Another copy of node-llama-cpp's entry point to run (bench:hot-path's stock one). */
  nodeLlamaCpp?: string;
};
const {getLlama, LlamaLogLevel} = (await import(nodeLlamaCpp ?? "node-llama-cpp")) as typeof import("node-llama-cpp");
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: threads, ...(cmakeOptions ? {cmakeOptions} : {})});
const model = await llama.loadModel({modelPath});
// The KV cache llama-bench gives its decode (n_ctx = prompt + generated + depth: 352 cells).
// Without flash attention the size matters: V is stored transposed, one row of n_ctx cells per
// channel, so attention reads n_kv of every n_ctx, a page apart at 2,048 cells. With a
// 2,048-cell context the 110M q8_0 model decoded 7-11% slower than with 656 cells at the same
// n_kv, in this probe and in a C++ program on llama.cpp's own API alike: no cost of
// node-llama-cpp, but one the old 2,048-cell probe charged to it. With flash attention (what "auto" picks on CPUs, in llama-server and in
// Paddock) V is not transposed and the size did not matter.
const contextSize = 256 + generate;
const context = await model.createContext({contextSize, sequences: 1, threads, flashAttention});
const sequence = context.getSequence();
// Token ids spread over the first 500 of the vocabulary (past BOS and EOS), the same for
// every build (llama-bench draws random ones: prompt speed does not depend on which).
const prompt = Array.from({length: 256}, (_, i) => (3 + ((i * 37) % 497)) as Token);

// Warm-up, as llama-bench does one run before it measures: here it is V8's, too. The
// JavaScript around each token is compiled by degrees as it runs; on the tiny model the first
// 2,000 tokens took 520-720 us each and the later ones about 410. Decode 3,000 tokens or for
// 3 s, whichever ends first (the larger models' tokens are too slow for JS to matter), in
// passes that fit the context.
{
  const until = performance.now() + 3_000;
  for (let warmed = 0; warmed < 3_000 && performance.now() < until; ) {
    await sequence.clearHistory();
    await sequence.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
    for await (const token of sequence.evaluate([prompt.at(-1)!], {temperature: 0, yieldEogToken: true})) {
      void token;
      if (++warmed >= 3_000 || performance.now() > until || sequence.nextTokenIndex >= contextSize - 1) break;
    }
  }
}

const pp: number[] = [];
for (let r = 0; r < reps; r++) {
  await sequence.clearHistory();
  const started = performance.now();
  await sequence.evaluateWithoutGeneratingNewTokens(prompt);
  pp.push((prompt.length * 1000) / (performance.now() - started));
}
/** Decodes `generate` greedy tokens after the prompt; milliseconds and tokens. */
async function decode(onStart = () => {}): Promise<{ms: number; tokens: number}> {
  await sequence.clearHistory();
  await sequence.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
  onStart();
  let tokens = 0;
  const started = performance.now();
  for await (const token of sequence.evaluate([prompt.at(-1)!], {temperature: 0, yieldEogToken: true})) {
    void token;
    if (++tokens >= generate) break;
  }
  return {ms: performance.now() - started, tokens};
}
const tg: number[] = [];
for (let r = 0; r < reps; r++) {
  const {ms, tokens} = await decode();
  tg.push((tokens * 1000) / ms);
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
const result: Record<string, unknown> = {buildType: llama.buildType, systemInfo: llama.systemInfo.trim(), pp: median(pp), tg: median(tg)};
if (phases) {
  result["phases"] = await timePhases();
  result["bareUs"] = await bareLoopUs();
}
process.stdout.write(`${JSON.stringify(result)}\n`);

/**
 * µs per token in llama_decode and in sampleToken, each timed from the JavaScript side (so
 * with its worker hop), and the rest of the token: node-llama-cpp's JavaScript and the event
 * loop. Reaches into node-llama-cpp's internal `_ctx` (the addon's context), as only a
 * benchmark may: its methods are read-only, so the context's reference to it is swapped for
 * a proxy that times the two calls and forwards everything else.
 */
async function timePhases(): Promise<DecodePhases> {
  const internal = context as unknown as {_ctx: Record<string | symbol, unknown>};
  const addon = internal._ctx;
  const spent = {decode: 0, sample: 0};
  const timed = (name: string, into: keyof typeof spent) => {
    const call = (addon[name] as (...args: unknown[]) => Promise<unknown>).bind(addon);
    return async (...args: unknown[]) => {
      const started = performance.now();
      try {
        return await call(...args);
      } finally {
        spent[into] += performance.now() - started;
      }
    };
  };
  const decodeBatch = timed("decodeBatch", "decode");
  const sampleToken = timed("sampleToken", "sample");
  internal._ctx = new Proxy(addon, {
    get: (target, key) => {
      if (key === "decodeBatch") return decodeBatch;
      if (key === "sampleToken") return sampleToken;
      const value = target[key];
      return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    }
  });
  try {
    // The prompt's evaluation is not the tokens': count from the first decoded token on.
    const {ms, tokens} = await decode(() => Object.assign(spent, {decode: 0, sample: 0}));
    const us = (v: number) => (v * 1000) / tokens;
    return {tokenUs: us(ms), decodeUs: us(spent.decode), sampleUs: us(spent.sample), restUs: us(ms - spent.decode - spent.sample)};
  } finally {
    internal._ctx = addon;
  }
}
/**
 * µs per token of the floor under node-llama-cpp's token path: the same greedy decode driven
 * straight through the addon (initBatch, addToBatch, decodeBatch, sampleToken), with none of
 * the package's JavaScript between tokens. Internal API, as only a benchmark may use it; the
 * sequence's own bookkeeping is left behind, so it runs last.
 */
async function bareLoopUs(): Promise<number> {
  interface Addon {
    initBatch(size: number): void;
    addToBatch(sequenceId: number, firstTokenIndex: number, tokens: Uint32Array, logitIndexes: Uint32Array): Uint32Array;
    decodeBatch(): Promise<void>;
    sampleToken(batchLogitIndex: number, sampler: unknown): Promise<number>;
  }
  const addon = (context as unknown as {_ctx: Addon})._ctx;
  const internals = llama as unknown as {_bindings: {AddonSampler: new (model: unknown) => {applyConfig(config: unknown): void; dispose(): void}}};
  const sampler = new internals._bindings.AddonSampler((model as unknown as {_model: unknown})._model);
  sampler.applyConfig((sequence as unknown as {_resolveSamplerConfig(o: object): unknown})._resolveSamplerConfig({temperature: 0}));
  await sequence.clearHistory();
  await sequence.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
  const token = new Uint32Array([prompt.at(-1)!]);
  const logits = new Uint32Array([0]);
  const started = performance.now();
  for (let i = 0; i < generate; i++) {
    addon.initBatch(1);
    const [index] = addon.addToBatch(0, prompt.length - 1 + i, token, logits);
    await addon.decodeBatch();
    token[0] = await addon.sampleToken(index!, sampler);
  }
  const us = ((performance.now() - started) * 1000) / generate;
  sampler.dispose();
  return us;
}
await context.dispose();
await model.dispose();
await llama.dispose();
