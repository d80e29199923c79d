/**
 * How concurrent sequences reach llama.cpp's decode calls in node-llama-cpp, and what a
 * batch costs: N clients generating on one context of S sequences (1 thread, as the data
 * plane runs), with node-llama-cpp's default batching next to a variant that holds a
 * batch back until every generating sequence has queued its token. Reports tokens/s and
 * how many of the generating sequences each decode carried. Findings: README, #16.
 *
 *   npm run bench:batching -- [model.gguf] [--clients 8] [--slots 4] [--tokens 32] [--rounds 2]
 *   (pin it for stable figures: taskset -c 1 node dist/bench/batching.js ...)
 */
import {CPU_BUILD_OPTIONS} from "./lib/peers.js";
import {parseArgs} from "node:util";
import {getLlama, LlamaCompletion, LlamaLogLevel, type BatchItem, type LlamaContextSequence, type PrioritizedBatchItem} from "node-llama-cpp";
import {TINY_MODEL} from "../dev/paths.js";
import {maximumParallelism, waitForAllStrategy} from "../inference-image/src/engine/batch-strategy.js";
import {printTable, writeResults} from "./lib/report.js";
import {round} from "./lib/stats.js";

const {values, positionals} = parseArgs({allowPositionals: true, options: {clients: {type: "string", default: "8"}, slots: {type: "string", default: "4"}, tokens: {type: "string", default: "32"}, rounds: {type: "string", default: "2"}}});
const modelPath = positionals[0] ?? TINY_MODEL;
const [clients, slots, maxTokens, rounds] = [values.clients, values.slots, values.tokens, values.rounds].map(Number) as [number, number, number, number];
async function run(variant: "default" | "wait-for-all", concurrency: number) {
  const llama = await getLlama({gpu: false, build: "never", cmakeOptions: CPU_BUILD_OPTIONS, maxThreads: 1, logLevel: LlamaLogLevel.error});
  const model = await llama.loadModel({modelPath});
  let generating = 0;
  const carried: number[] = [];
  const waitForAll = waitForAllStrategy(() => generating);
  const context = await model.createContext({
    sequences: slots,
    contextSize: 512 * slots,
    threads: 1,
    batching: {
      // node-llama-cpp's maximumParallelism, or the server's strategy (inference-image/src/
      // batch-strategy.ts), with each decode's share of the generating sequences recorded.
      itemPrioritizationStrategy: (input: {items: readonly BatchItem[]; size: number}): PrioritizedBatchItem[] => {
        const batch = variant === "wait-for-all" ? waitForAll(input) : maximumParallelism(input.items, input.size);
        if (batch.length > 0 && generating > 1) carried.push(batch.length / generating);
        return batch;
      }
    }
  });
  const free: LlamaContextSequence[] = Array.from({length: slots}, () => context.getSequence());
  const waiting: Array<(s: LlamaContextSequence) => void> = [];
  let tokens = 0;
  const one = async (i: number) => {
    const sequence = free.pop() ?? (await new Promise<LlamaContextSequence>((r) => waiting.push(r)));
    generating++;
    const completion = new LlamaCompletion({contextSequence: sequence});
    try {
      await completion.generateCompletion(`Once upon a time ${i} there`, {maxTokens, temperature: 1, seed: i, onToken: (t) => (tokens += t.length)});
    } finally {
      generating--;
      completion.dispose({disposeSequence: false});
      const next = waiting.shift();
      if (next) next(sequence);
      else free.push(sequence);
    }
  };
  await one(-1);
  tokens = 0;
  carried.length = 0;
  const total = concurrency * 3;
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({length: concurrency}, async () => {
    while (next < total) await one(next++);
  }));
  const seconds = (performance.now() - started) / 1000;
  await llama.dispose();
  const full = carried.filter((c) => c >= 1).length;
  return {tokPerS: tokens / seconds, decodes: carried.length, fullShare: carried.length ? full / carried.length : NaN};
}

const rows: Array<Record<string, string | number>> = [];
for (let r = 0; r < rounds; r++) {
  for (const [variant, concurrency] of [["default", 1], ["default", clients], ["wait-for-all", clients]] as const) {
    const result = await run(variant, concurrency);
    rows.push({round: r + 1, variant, clients: concurrency, "tok/s": round(result.tokPerS, 0), "decodes (>1 generating)": result.decodes, "carrying every generating sequence": concurrency > 1 ? `${round(100 * result.fullShare, 0)}%` : "-"});
  }
}
printTable(`${modelPath}: ${slots} sequences, 1 thread, ${maxTokens} tokens per request, ${clients} clients x 3 requests`, rows);
console.log(`\nwrote ${writeResults("batching", {modelPath, slots, clients, maxTokens, rows})}`);
