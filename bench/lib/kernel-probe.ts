/**
 * One llama.cpp build, in-process, without any server: prompt processing (pp: a 256-token
 * prompt evaluated from an empty sequence) and single-sequence decoding (tg: 96 greedy tokens
 * after a 256-token prompt), as llama-bench measures `-p 256` and `-n 96 -d 256`, after a
 * warm-up as llama-bench's. Run as a child process per build (bench/llama-builds.ts), pinned
 * to one core, printing one JSON line.
 *   node dist/bench/lib/kernel-probe.js '{"model": "...", "cmakeOptions": {...}, "threads": 1, "flashAttention": true}'
 */
import {getLlama, LlamaLogLevel, type Token} from "node-llama-cpp";

const {model: modelPath, cmakeOptions, threads = 1, reps = 3, flashAttention = false} = JSON.parse(process.argv[2] ?? "{}") as {
  model: string;
  cmakeOptions?: Record<string, string>;
  threads?: number;
  reps?: number;
  flashAttention?: boolean;
};
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: threads, ...(cmakeOptions ? {cmakeOptions} : {})});
const model = await llama.loadModel({modelPath});
// The KV cache llama-bench gives its decode (n_ctx = prompt + generated + depth = 352 cells).
// Without flash attention the size matters: V is stored transposed, one row of n_ctx cells per
// channel, so attention reads n_kv of every n_ctx, a page apart at 2,048 cells. With a
// 2,048-cell context the 110M q8_0 model decoded 7-11% slower than with 656 cells at the same
// n_kv, in this probe and in a C++ program on llama.cpp's own API alike: no cost of
// node-llama-cpp, but one the old 2,048-cell probe charged to it. With flash attention (what "auto" picks on CPUs, in llama-server and in
// Paddock) V is not transposed and the size did not matter.
const contextSize = 256 + 96;
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
const tg: number[] = [];
for (let r = 0; r < reps; r++) {
  await sequence.clearHistory();
  await sequence.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
  let n = 0;
  const started = performance.now();
  for await (const token of sequence.evaluate([prompt.at(-1)!], {temperature: 0, yieldEogToken: true})) {
    void token;
    if (++n >= 96) break;
  }
  tg.push((n * 1000) / (performance.now() - started));
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
process.stdout.write(`${JSON.stringify({buildType: llama.buildType, systemInfo: llama.systemInfo.trim(), pp: median(pp), tg: median(tg)})}\n`);
await context.dispose();
await model.dispose();
await llama.dispose();
