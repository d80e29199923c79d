/**
 * node-llama-cpp's per-token JavaScript, stock against Paddock's patch
 * (inference-image/patches/node-llama-cpp-3.22.1-sequence-hot-path.patch), in one run: the
 * same install-time build of llama.cpp, 400 greedy tokens after a 256-token prompt, one thread
 * pinned to core 1 with the JavaScript, flash attention on, through bench/lib/kernel-probe.ts.
 * The stock side is a copy of the installed package's dist/ with that patch reversed (its
 * native code is the installed one); the rounds alternate, and each cell is their median.
 * A third row is the floor: the same decode driven straight through the addon, with none of
 * node-llama-cpp's JavaScript between tokens (bench/lib/kernel-probe.ts, `bareLoopUs`).
 *   npm run bench:hot-path  [BENCH_MODELS=tiny,20m:q8_0,110m:q8_0] [BENCH_ROUNDS=3]
 */
import {spawnSync} from "node:child_process";
import {cpSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync} from "node:fs";
import {join, resolve} from "node:path";
import {REPO_ROOT} from "../dev/paths.js";
import {benchModel, decodePhases, llamaBenchTokenUs, type DecodePhases} from "./lib/peers.js";
import {printTable, writeResults} from "./lib/report.js";
import {percentile, round} from "./lib/stats.js";

const models = (process.env["BENCH_MODELS"] ?? "tiny,20m:q8_0,110m:q8_0").split(",");
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? "3");
const GENERATE = 400;
const PATCH = resolve(REPO_ROOT, "inference-image/patches/node-llama-cpp-3.22.1-sequence-hot-path.patch");
const INSTALLED = resolve(REPO_ROOT, "node_modules/node-llama-cpp");

/**
 * The installed package with the patch reversed in a copy of its dist/ (its other folders are
 * links: the binaries are the same). It lives under the repository so that its imports of
 * node-llama-cpp's dependencies resolve to the installed ones.
 */
function stockPackage(): string {
  const version = (JSON.parse(readFileSync(join(INSTALLED, "package.json"), "utf8")) as {version: string}).version;
  if (!PATCH.includes(`-${version}-`)) throw new Error(`the hot-path patch is not for node-llama-cpp ${version}`);
  const copy = resolve(REPO_ROOT, ".paddock/stock-node-llama-cpp/node_modules/node-llama-cpp");
  rmSync(copy, {recursive: true, force: true});
  mkdirSync(copy, {recursive: true});
  for (const entry of readdirSync(INSTALLED)) {
    if (entry === "dist") cpSync(join(INSTALLED, entry), join(copy, entry), {recursive: true});
    else symlinkSync(join(INSTALLED, entry), join(copy, entry), lstatSync(join(INSTALLED, entry)).isDirectory() ? "dir" : "file");
  }
  const reversed = spawnSync("git", ["apply", "-p1", "--reverse", PATCH], {cwd: copy, encoding: "utf8", env: {...process.env, GIT_CEILING_DIRECTORIES: resolve(copy, "..")}});
  if (reversed.status !== 0) throw new Error(`the installed package does not carry the hot-path patch (npm ci applies it): ${reversed.stderr}`);
  return join(copy, "dist/index.js");
}

const median = (v: number[]) => percentile(v, 50);

const stock = stockPackage();
const rows = [];
const results: Record<string, unknown> = {};
for (const name of models) {
  const model = benchModel(name, 2048);
  const runs = {stock: [] as DecodePhases[], patched: [] as DecodePhases[], bareUs: [] as number[], llamaBenchUs: [] as number[]};
  for (let r = 0; r < ROUNDS; r++) {
    runs.stock.push(decodePhases(model, GENERATE, stock).phases);
    const patched = decodePhases(model, GENERATE);
    runs.patched.push(patched.phases);
    runs.bareUs.push(patched.bareUs);
    runs.llamaBenchUs.push(llamaBenchTokenUs(model, GENERATE));
  }
  results[name] = runs;
  const bench = median(runs.llamaBenchUs);
  for (const side of ["stock", "patched"] as const) {
    const cell = (k: keyof DecodePhases) => median(runs[side].map((p) => p[k]));
    rows.push({
      model: name,
      "node-llama-cpp": side,
      "µs/token": round(cell("tokenUs"), 0),
      "llama_decode µs": round(cell("decodeUs"), 0),
      "sampleToken µs": round(cell("sampleUs"), 0),
      "rest µs": round(cell("restUs"), 0),
      "llama-bench µs/token": round(bench, 0),
      "tok/s vs llama-bench": round(bench / cell("tokenUs"), 2)
    });
  }
  const bare = median(runs.bareUs);
  rows.push({model: name, "node-llama-cpp": "bare addon loop", "µs/token": round(bare, 0), "llama_decode µs": "", "sampleToken µs": "", "rest µs": "", "llama-bench µs/token": round(bench, 0), "tok/s vs llama-bench": round(bench / bare, 2)});
}
printTable(`node-llama-cpp's token path, stock vs Paddock's patch: ${GENERATE} tokens at depth 256, 1 thread on core 1, flash attention on, median of ${ROUNDS} alternating rounds`, rows);
console.log(`\nwrote ${writeResults("hot-path", {generate: GENERATE, rounds: ROUNDS, results})}`);
