/**
 * Where a decoded token's time goes in-process, beside llama-bench's whole token: for each
 * model, 400 greedy tokens after a 256-token prompt (llama-bench -n 400 -d 256), one thread
 * pinned to core 1, flash attention on (what "auto" picks on a CPU, in Paddock and in
 * llama-server), each side with a 656-cell KV cache. The in-process token is split into
 * llama_decode, sampleToken and the rest (node-llama-cpp's JavaScript and the event loop),
 * timed by bench/lib/kernel-probe.ts's `phases`.
 *   npm run bench:decode-phases  [BENCH_MODELS=tiny,20m:f16,20m:q8_0,110m:q8_0]
 */
import {benchModel, decodePhases, llamaBenchTokenUs} from "./lib/peers.js";
import {printTable, writeResults} from "./lib/report.js";
import {round} from "./lib/stats.js";

const models = (process.env["BENCH_MODELS"] ?? "tiny,20m:f16,20m:q8_0,110m:q8_0").split(",");
const GENERATE = 400;

const rows = [];
const results: Record<string, unknown> = {};
for (const name of models) {
  const model = benchModel(name, 2048);
  const benchUs = llamaBenchTokenUs(model, GENERATE);
  const ours = decodePhases(model, GENERATE).phases;
  results[name] = {llamaBenchTokenUs: benchUs, inProcess: ours};
  rows.push({
    model: name,
    "llama-bench µs/token": round(benchUs, 0),
    "in-process µs/token": round(ours.tokenUs, 0),
    "llama_decode µs": round(ours.decodeUs, 0),
    "sampleToken µs": round(ours.sampleUs, 0),
    "rest µs": round(ours.restUs, 0),
    "llama_decode / llama-bench": round(ours.decodeUs / benchUs, 2),
    "in-process / llama-bench tok/s": round(benchUs / ours.tokenUs, 2)
  });
}
printTable(`A decoded token's time, in-process (node-llama-cpp, the install-time build) vs llama-bench: ${GENERATE} tokens at depth 256, 1 thread on core 1, flash attention on`, rows);
console.log(`\nwrote ${writeResults("decode-phases", {generate: GENERATE, results})}`);
