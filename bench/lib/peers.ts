/** What the data-plane benchmarks run against: model files of real shapes and llama.cpp's llama-server. */
import {spawn, spawnSync, type ChildProcess} from "node:child_process";
import {chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync} from "node:fs";
import {tmpdir} from "node:os";
import {dirname, join, resolve} from "node:path";
import {REPO_ROOT, TINY_MODEL} from "../../dev/paths.js";
import {GGML} from "../../dev/models/gguf.js";
import {SHAPES, writeSyntheticModel} from "../../dev/models/synthetic.js";
import {freePort} from "../../dev/processes/ports.js";

export const MODEL_DIR = resolve(REPO_ROOT, ".paddock/bench-models");

/**
 * The CMake options of the install-time CPU build of llama.cpp, as the server asks getLlama
 * for them: an in-process baseline passes them too, or it runs the prebuilt binaries.
 */
export const CPU_BUILD_OPTIONS = (JSON.parse(readFileSync(resolve(REPO_ROOT, "inference-image/llama-cpu-build.json"), "utf8")) as {cmakeOptions: Record<string, string>}).cmakeOptions;

/**
 * `tiny` (the real stories260K) or a synthetic shape (`20m`, `110m`, ...) in its default
 * tensor type, or another after a colon (`110m:q8_0`); written once and kept.
 */
export function benchModel(name: string, contextLength: number): string {
  if (name === "tiny") return TINY_MODEL;
  const [shapeName = "", type] = name.split(":");
  const shape = SHAPES[shapeName];
  if (!shape) throw new Error(`unknown model ${name}`);
  if (type !== undefined && !(type in GGML)) throw new Error(`unknown tensor type ${type} (${Object.keys(GGML).join(", ")})`);
  mkdirSync(MODEL_DIR, {recursive: true});
  const path = join(MODEL_DIR, `synthetic-${shapeName}${type ? `-${type}` : ""}-text.gguf`);
  const options = {shape, tokenizerFrom: TINY_MODEL, out: path, seed: 1, contextLength, textOnly: true};
  if (!existsSync(path)) writeSyntheticModel(type ? {...options, type: type as keyof typeof GGML} : options);
  return path;
}

export interface LlamaServerOptions {
  readonly slots: number;
  /** Tokens per slot. */
  readonly context: number;
  readonly threads: number;
  /** The core it is pinned to. */
  readonly core: string;
  readonly extraArgs?: readonly string[];
}

let peerBin: string | undefined;
let copies: string | undefined;
let copied = 0;
/**
 * A fresh copy of one of llama.cpp's programs that bench/peers/build-llama-server.sh builds
 * (once, cached outside the clone; the script is asked once per benchmark process), for each
 * call. Why a copy: on this VM the speed of a program depends on where its file's pages lie
 * in memory, persistently for as long as they stay cached. In 5 alternating rounds the
 * cached llama-bench decoded 20M q8_0 at 519-583 tok/s, two byte-identical copies of it at
 * 686-771, and an earlier build of the same tree (its code differing only in build ids and
 * paths) and two copies of that at 688-777. A copy per run turns that bias into noise, which
 * rounds and medians can handle.
 */
export function peerBinary(name: "llama-server" | "llama-bench" | "llama-batched-bench"): string {
  if (peerBin === undefined) {
    const built = spawnSync("bash", [resolve(REPO_ROOT, "bench/peers/build-llama-server.sh")], {encoding: "utf8", stdio: ["ignore", "pipe", "inherit"]});
    if (built.status !== 0) throw new Error("bench/peers/build-llama-server.sh failed");
    peerBin = dirname(built.stdout.trim().split("\n").at(-1)!);
  }
  if (copies === undefined) {
    const dir = mkdtempSync(join(tmpdir(), "paddock-peers-"));
    process.once("exit", () => rmSync(dir, {recursive: true, force: true}));
    copies = dir;
  }
  const copy = join(copies, `${name}-${++copied}`);
  copyFileSync(join(peerBin, name), copy);
  chmodSync(copy, 0o755);
  return copy;
}

/** llama-bench's tokens/s for one test (`args`, e.g. `-p 256 -n 0`), 1 thread on core 1, 3 repetitions. */
export function llamaBenchSpeed(model: string, flashAttention: boolean, args: readonly string[]): number {
  const r = spawnSync("taskset", ["-c", "1", peerBinary("llama-bench"), "-m", model, "-t", "1", "-fa", flashAttention ? "1" : "0", "-r", "3", "-o", "json", ...args], {encoding: "utf8"});
  if (r.status !== 0) throw new Error(`llama-bench failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as Array<{avg_ts: number}>)[0]!.avg_ts;
}

/**
 * Runs a built probe (`dist/bench/lib/<name>.js`) with its JSON arguments in a child process
 * pinned to core 1, and returns the JSON line it prints last.
 */
export function runProbe<T>(name: string, args: object): T {
  const r = spawnSync("taskset", ["-c", "1", process.execPath, resolve(REPO_ROOT, `dist/bench/lib/${name}.js`), JSON.stringify(args)], {encoding: "utf8"});
  if (r.status !== 0) throw new Error(`${name} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!) as T;
}

/** Where an in-process decoded token's time goes, in µs per token (bench/lib/kernel-probe.ts's `phases`). */
export interface DecodePhases {
  tokenUs: number;
  /** llama_decode seen from JavaScript, its worker hop included. */
  decodeUs: number;
  sampleUs: number;
  /** node-llama-cpp's JavaScript and the event loop between the native calls. */
  restUs: number;
}

/**
 * `generate` greedy tokens after a 256-token prompt in-process, 1 thread on core 1, flash
 * attention on: the token's phases, and the same decode as a bare loop through the addon
 * (the floor). `nodeLlamaCpp` runs another copy of the package (bench:hot-path's stock one).
 */
export function decodePhases(model: string, generate: number, nodeLlamaCpp?: string): {phases: DecodePhases; bareUs: number} {
  return runProbe("kernel-probe", {model, cmakeOptions: CPU_BUILD_OPTIONS, threads: 1, reps: 1, flashAttention: true, generate, phases: true, ...(nodeLlamaCpp ? {nodeLlamaCpp} : {})});
}

/** llama-bench's µs per decoded token at depth 256, flash attention on (its tokens carry no sampling). */
export function llamaBenchTokenUs(model: string, generate: number): number {
  return 1e6 / llamaBenchSpeed(model, true, ["-p", "0", "-n", String(generate), "-d", "256"]);
}

/**
 * llama-server (bench/peers/build-llama-server.sh builds it once) on `path`, pinned to a core,
 * rendering chats with ChatML as the benchmarks' Paddock servers are told to.
 */
export async function startLlamaServer(path: string, options: LlamaServerOptions): Promise<{url: string; child: ChildProcess}> {
  const binary = peerBinary("llama-server");
  const port = await freePort();
  const {slots, context, threads, core} = options;
  // -c is the whole KV cache, split across --parallel slots: the same tokens per slot as ours.
  const args = ["-m", path, "--host", "127.0.0.1", "--port", String(port), "--parallel", String(slots), "-c", String(context * slots), "-t", String(threads), "-tb", String(threads), "-ngl", "0", "--no-webui", "--log-disable", "--chat-template", "chatml", ...(options.extraArgs ?? [])];
  const child = spawn("taskset", ["-c", core, binary, ...args], {stdio: ["ignore", "ignore", "pipe"]});
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => (stderr = (stderr + b.toString()).slice(-3000)));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`llama-server exited: ${stderr}`);
    const ok = await fetch(`${url}/health`).then((r) => r.ok, () => false);
    if (ok) return {url, child};
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`llama-server did not become healthy: ${stderr}`);
}
