/**
 * Batched decoding in-process, as llama-batched-bench measures it: B sequences of one
 * context each evaluate a 256-token prompt, then all generate `generate` greedy tokens at
 * once; tokens/s over the generation only. Run as a child process per case
 * (bench/batched-decode.ts), pinned to one core, printing one JSON line.
 *   node dist/bench/lib/batch-probe.js '{"model": "...", "sequences": 4, "strategy": "wait-for-all"}'
 * `strategy`: node-llama-cpp's own dispatch ("default") or the server's (inference-image/src/
 * engine/batch-strategy.ts, "wait-for-all"); either way the probe records how many of the
 * generating sequences each decode carried.
 */
import {getLlama, LlamaLogLevel, type BatchItem, type LlamaContextSequence, type PrioritizedBatchItem, type Token} from "node-llama-cpp";
import {maximumParallelism, waitForAllStrategy} from "../../inference-image/src/engine/batch-strategy.js";
import {CPU_BUILD_OPTIONS} from "./peers.js";

const {
  model: modelPath,
  sequences,
  strategy,
  generate = 32,
  reps = 2
} = JSON.parse(process.argv[2] ?? "{}") as {model: string; sequences: number; strategy: "default" | "wait-for-all"; generate?: number; reps?: number};
const PROMPT = 256;
let generating = 0;
const carried: number[] = [];
const waitForAll = waitForAllStrategy(() => generating);
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, maxThreads: 1, cmakeOptions: CPU_BUILD_OPTIONS});
const model = await llama.loadModel({modelPath});
// The cells llama-batched-bench's -c 4096 gives, flash attention on as "auto" picks on a CPU.
const context = await model.createContext({
  contextSize: 4096,
  sequences,
  threads: 1,
  flashAttention: true,
  batching: {
    itemPrioritizationStrategy: ({items, size}: {items: readonly BatchItem[]; size: number}): PrioritizedBatchItem[] => {
      const batch = strategy === "wait-for-all" ? waitForAll({items, size}) : maximumParallelism(items, size);
      if (batch.length > 0 && generating > 1) carried.push(batch.length / generating);
      return batch;
    }
  }
});
const slots = Array.from({length: sequences}, () => context.getSequence());
// A different prompt per sequence (llama-batched-bench's are random tokens).
const prompt = (k: number) => Array.from({length: PROMPT}, (_, i) => (3 + ((i * 37 + k * 11) % 497)) as Token);

async function generateOn(sequence: LlamaContextSequence, k: number): Promise<number> {
  let tokens = 0;
  generating++;
  try {
    for await (const token of sequence.evaluate([prompt(k).at(-1)!], {temperature: 0, yieldEogToken: true})) {
      void token;
      if (++tokens >= generate) break;
    }
  } finally {
    generating--;
  }
  return tokens;
}

const speeds: number[] = [];
// One unmeasured pass first: V8 compiles node-llama-cpp's per-token JavaScript as it runs.
for (let r = 0; r <= reps; r++) {
  for (const [k, sequence] of slots.entries()) {
    await sequence.clearHistory();
    await sequence.evaluateWithoutGeneratingNewTokens(prompt(k).slice(0, -1));
  }
  carried.length = 0;
  const started = performance.now();
  const counts = await Promise.all(slots.map((sequence, k) => generateOn(sequence, k)));
  const seconds = (performance.now() - started) / 1000;
  if (r > 0) speeds.push(counts.reduce((a, b) => a + b, 0) / seconds);
}
const full = carried.filter((share) => share === 1).length;
process.stdout.write(`${JSON.stringify({tokensPerSecond: speeds.sort((a, b) => a - b)[Math.floor(speeds.length / 2)], decodes: carried.length, fullDecodes: full})}\n`);
await context.dispose();
await model.dispose();
await llama.dispose();
