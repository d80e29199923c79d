/**
 * The kernels' floor and the builds of llama.cpp the server can load, side by side: for each
 * model, llama-bench (built from the llama.cpp tree of the same ggml, bench/peers) against
 * node-llama-cpp in-process (no server) with its prebuilt CPU binaries and with the build
 * made at install time (inference-image/llama-cpu-build.json). Prompt processing of 256
 * tokens (pp256, llama-bench -p 256) and single-sequence decoding of 96 tokens after a
 * 256-token prompt (tg96@256, llama-bench -n 96 -d 256); one thread pinned to core 1, medians
 * of 3, with the KV cache llama-bench sizes (kernel-probe.ts says why that matters). Flash
 * attention on (what "auto" picks on a CPU, in Paddock and in llama-server alike) and off.
 *   npm run bench:llama-builds  [BENCH_MODELS=tiny,20m:f16,110m:f16,20m:q8_0,110m:q8_0]
 */
import {benchModel, CPU_BUILD_OPTIONS, llamaBenchSpeed, runProbe} from "./lib/peers.js";
import {printTable, writeResults} from "./lib/report.js";
import {round} from "./lib/stats.js";

const models = (process.env["BENCH_MODELS"] ?? "tiny,20m:f16,110m:f16,20m:q8_0,110m:q8_0").split(",");
const cpuBuild = CPU_BUILD_OPTIONS;
// An option no build has: node-llama-cpp then falls back to its prebuilt binaries.
const builds = {prebuilt: {PADDOCK_PREBUILT_ONLY: "1"}, local: cpuBuild};

interface Speeds {
  pp: number;
  tg: number;
}

function probe(model: string, cmakeOptions: Record<string, string>, flashAttention: boolean): Speeds & {buildType: string} {
  return runProbe("kernel-probe", {model, cmakeOptions, threads: 1, flashAttention});
}

function llamaBench(model: string, flashAttention: boolean): Speeds {
  return {pp: llamaBenchSpeed(model, flashAttention, ["-p", "256", "-n", "0"]), tg: llamaBenchSpeed(model, flashAttention, ["-p", "0", "-n", "96", "-d", "256"])};
}

const rows = [];
const results: Record<string, unknown> = {};
for (const name of models) {
  for (const flashAttention of [true, false]) {
    const model = benchModel(name, 2048);
    const floor = llamaBench(model, flashAttention);
    const prebuilt = probe(model, builds.prebuilt, flashAttention);
    const local = probe(model, builds.local, flashAttention);
    if (local.buildType !== "localBuild") throw new Error(`no local build of llama.cpp (got ${local.buildType}): run node inference-image/scripts/build-llama.mjs`);
    results[`${name} fa=${flashAttention ? "on" : "off"}`] = {llamaBench: floor, prebuilt, local};
    rows.push({
      model: name,
      "flash attn": flashAttention ? "on" : "off",
      "llama-bench pp256": round(floor.pp, 0),
      "prebuilt pp": round(prebuilt.pp, 0),
      "local pp": round(local.pp, 0),
      "local / bench pp": round(local.pp / floor.pp, 2),
      "llama-bench tg96@256": round(floor.tg, 0),
      "prebuilt tg": round(prebuilt.tg, 0),
      "local tg": round(local.tg, 0),
      "local / bench tg": round(local.tg / floor.tg, 2)
    });
  }
}
printTable("llama.cpp builds, tokens/s: llama-bench vs node-llama-cpp in-process (prebuilt, and the install-time build), 1 thread on core 1, KV cache as llama-bench sizes it", rows);
console.log(`\nwrote ${writeResults("llama-builds", {cpuBuild, results})}`);
