/**
 * llama.cpp thread count vs generation speed on this machine, next to the default the
 * server derives (CPU budget from cgroup quota / affinity, minus one core for Node).
 *
 *   npm run bench:threads
 */
import {CPU_BUILD_OPTIONS} from "./lib/peers.js";
import {availableParallelism} from "node:os";
import {getLlama, LlamaCompletion, LlamaLogLevel} from "node-llama-cpp";
import {cpuBudget, defaultThreads, readCpuBudgetSources} from "../inference-image/src/engine/cpu-budget.js";
import {TINY_MODEL} from "../dev/paths.js";
import {printTable, writeResults} from "./lib/report.js";
import {percentile, round} from "./lib/stats.js";

const TOKENS = 128;
const RUNS = 5;
const budget = cpuBudget(readCpuBudgetSources());
const counts = [...new Set([1, 2, availableParallelism(), availableParallelism() * 2])].sort((a, b) => a - b);
const rows: Array<Record<string, number | string>> = [];
for (const threads of counts) {
  const llama = await getLlama({gpu: false, build: "never", cmakeOptions: CPU_BUILD_OPTIONS, maxThreads: threads, logLevel: LlamaLogLevel.error});
  const model = await llama.loadModel({modelPath: TINY_MODEL});
  const context = await model.createContext({contextSize: 512, threads});
  const sequence = context.getSequence();
  const rates: number[] = [];
  // A cap per run: oversubscribed threads can slow generation to a crawl.
  for (let i = 0; i < RUNS; i++) {
    const completion = new LlamaCompletion({contextSequence: sequence});
    const t0 = performance.now();
    let tokens = 0;
    await completion.generateCompletionWithMeta("Once upon a time", {maxTokens: TOKENS, temperature: 0, repeatPenalty: false, signal: AbortSignal.timeout(20_000), stopOnAbortSignal: true, onToken: (t) => (tokens += t.length)});
    rates.push(tokens / ((performance.now() - t0) / 1000));
    completion.dispose({disposeSequence: false});
    await sequence.clearHistory();
  }
  rows.push({threads, "tok/s (median)": round(percentile(rates, 50), 0), "tok/s (min)": round(Math.min(...rates), 0), default: threads === defaultThreads(budget) ? "<- default" : ""});
  await llama.dispose();
}
printTable(`Greedy ${TOKENS}-token generation, 1 sequence, tiny model; CPU budget ${budget} cores, default THREADS=${defaultThreads(budget)}`, rows);
console.log(`\nwrote ${writeResults("threads", {budgetCores: budget, defaultThreads: defaultThreads(budget), rows})}`);
