/**
 * What a batch of sequences gains over one, in llama.cpp itself (llama-batched-bench, from
 * the tree llama-server comes from, bench/peers) and in node-llama-cpp in-process with its
 * own dispatch and with the server's wait-for-all strategy: B sequences with 256-token
 * prompts, then all generating 32 greedy tokens at once; generation tokens/s, one thread
 * pinned to core 1, flash attention on, 4,096 cells. #27's item 3.
 *   npm run bench:batched-decode  [BENCH_MODELS=110m:f16,20m:q8_0] [BENCH_BATCH=4]
 */
import {spawnSync} from "node:child_process";
import {benchModel, peerBinary, runProbe} from "./lib/peers.js";
import {printTable, writeResults} from "./lib/report.js";
import {round} from "./lib/stats.js";

const models = (process.env["BENCH_MODELS"] ?? "110m:f16,20m:q8_0,tiny").split(",");
const BATCH = Number(process.env["BENCH_BATCH"] ?? 4);
const GENERATE = 32;

interface Probe {
  tokensPerSecond: number;
  decodes: number;
  fullDecodes: number;
}

function inProcess(model: string, sequences: number, strategy: "default" | "wait-for-all"): Probe {
  return runProbe("batch-probe", {model, sequences, strategy, generate: GENERATE});
}

/** llama-batched-bench's generation tokens/s for 1 and BATCH sequences. */
function batchedBench(model: string): {one: number; batch: number} {
  const args = ["-m", model, "-c", "4096", "-b", "2048", "-ub", "512", "-npp", "256", "-ntg", String(GENERATE), "-npl", `1,${BATCH}`, "-t", "1", "-fa", "on", "--output-format", "jsonl"];
  const r = spawnSync("taskset", ["-c", "1", peerBinary("llama-batched-bench"), ...args], {encoding: "utf8"});
  if (r.status !== 0) throw new Error(`llama-batched-bench failed: ${r.stderr}`);
  const lines = r.stdout
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as {pl: number; speed_tg: number});
  const speed = (pl: number) => lines.find((l) => l.pl === pl)?.speed_tg ?? Number.NaN;
  return {one: speed(1), batch: speed(BATCH)};
}

const rows = [];
const results: Record<string, unknown> = {};
for (const name of models) {
  const model = benchModel(name, 4096);
  const floor = batchedBench(model);
  const one = inProcess(model, 1, "default");
  const dispatch = inProcess(model, BATCH, "default");
  const waitForAll = inProcess(model, BATCH, "wait-for-all");
  results[name] = {llamaBatchedBench: floor, inProcess: {one, dispatch, waitForAll}};
  const full = (p: Probe) => `${p.fullDecodes}/${p.decodes}`;
  rows.push({
    model: name,
    "batched-bench B=1": round(floor.one, 0),
    [`batched-bench B=${BATCH}`]: round(floor.batch, 0),
    "batched-bench gain": round(floor.batch / floor.one, 2),
    "in-process B=1": round(one.tokensPerSecond, 0),
    [`node-llama-cpp dispatch B=${BATCH}`]: round(dispatch.tokensPerSecond, 0),
    "dispatch gain": round(dispatch.tokensPerSecond / one.tokensPerSecond, 2),
    "dispatch full decodes": full(dispatch),
    [`wait-for-all B=${BATCH}`]: round(waitForAll.tokensPerSecond, 0),
    "wait-for-all gain": round(waitForAll.tokensPerSecond / one.tokensPerSecond, 2),
    "wait-for-all full decodes": full(waitForAll),
    "wait-for-all / batched-bench": round(waitForAll.tokensPerSecond / floor.batch, 2)
  });
}
printTable(`Batched decoding: ${BATCH} sequences against 1, generation tokens/s (256-token prompts, ${GENERATE} tokens each), 1 thread on core 1, flash attention on`, rows);
console.log(`\nwrote ${writeResults("batched-decode", {batch: BATCH, generate: GENERATE, results})}`);
