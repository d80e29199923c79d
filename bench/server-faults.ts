/**
 * #26's two server faults measured before (A, a build of the code before the fix) and
 * after (B), side by side in one run, each server pinned to core 1 and the clients on core 0:
 *
 * - **Prompt-cache stalls** (item 7): 3 streaming clients (short prompts, 64 tokens, so
 *   their slots never hold enough to be saved) while a fourth client alternates between two
 *   conversations with ~1,000-token system prompts, so every visit saves the other's state
 *   and restores its own. Reported: the streaming clients' time to first token and the gaps
 *   between their tokens. B with `PROMPT_CACHE_BYTES=0` (no saves at all) is the floor.
 * - **logprobs memory** (item 6): one request for 1,000 tokens with `top_logprobs: 5` on a
 *   model with Llama-3's 128k vocabulary (the tiny model's shape): time and the server's
 *   peak RSS (VmHWM).
 *
 *   npm run bench:server-faults -- --a /work/base-26 [--b .] [--seconds 60] [--model 110m] [--only stalls|logprobs]
 */
import {spawnSync} from "node:child_process";
import {existsSync, mkdirSync, readFileSync} from "node:fs";
import {join, resolve} from "node:path";
import {parseArgs} from "node:util";
import {SHAPES, writeSyntheticModel} from "../dev/models/synthetic.js";
import {TINY_MODEL} from "../dev/paths.js";
import {ServerProcess} from "../dev/processes/server.js";
import {benchModel, MODEL_DIR} from "./lib/peers.js";
import {printTable, writeResults} from "./lib/report.js";
import {percentile, round} from "./lib/stats.js";

const {values} = parseArgs({options: {a: {type: "string"}, b: {type: "string", default: "."}, seconds: {type: "string", default: "60"}, model: {type: "string", default: "110m"}, only: {type: "string"}}});
if (!values.a) {
  process.stderr.write("usage: bench:server-faults -- --a <built checkout> [--b <built checkout>] [--seconds S] [--model 110m] [--only stalls|logprobs]\n");
  process.exit(2);
}
const SECONDS = Number(values.seconds);
spawnSync("taskset", ["-a", "-p", "-c", "0", String(process.pid)]);

async function start(dir: string, model: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const server = await ServerProcess.start(
    {MODEL_PATH: model, MODEL_NAME: "m", PARALLEL_SLOTS: "4", CONTEXT_SIZE: "2048", CACHE_MODE: "off", CHAT_WRAPPER: "chatML", ...env},
    {entry: resolve(dir, "dist/inference-image/src/main.js")}
  );
  spawnSync("taskset", ["-a", "-p", "-c", "1", String(server.child.pid)]);
  return server;
}

/** A streamed chat: when each content delta arrived. */
async function streamTimes(url: string, messages: unknown[], maxTokens: number): Promise<{sentAt: number; times: number[]}> {
  const sentAt = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: {"content-type": "application/json"},
    body: JSON.stringify({model: "m", messages, max_tokens: maxTokens, temperature: 0, stream: true})
  });
  const times: number[] = [];
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const bytes of res.body!) {
    const now = performance.now();
    buffered += decoder.decode(bytes as Uint8Array, {stream: true});
    let end: number;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      if (buffered.slice(0, end).includes('"content":"')) times.push(now);
      buffered = buffered.slice(end + 2);
    }
  }
  return {sentAt, times};
}

/** A system prompt of about 1,000 tokens, different for each conversation. */
const systemPrompt = (id: string) => Array.from({length: 110}, (_, i) => `Rule ${id}-${i}: the cat sat.`).join(" ");

async function stallCell(server: ServerProcess): Promise<Record<string, number>> {
  const deadline = Date.now() + SECONDS * 1000;
  const ttfts: number[] = [];
  const gaps: number[] = [];
  let saves = 0;
  const streaming = Array.from({length: 3}, async (_, c) => {
    for (let n = 0; Date.now() < deadline; n++) {
      const {sentAt, times} = await streamTimes(server.url, [{role: "user", content: `Tell story ${c}.${n % 2}`}], 64);
      if (times.length === 0) continue;
      ttfts.push(times[0]! - sentAt);
      for (let i = 1; i < times.length; i++) gaps.push(times[i]! - times[i - 1]!);
    }
  });
  const conversations = (async () => {
    for (let n = 0; Date.now() < deadline; n++) {
      const id = n % 2 === 0 ? "a" : "b";
      await streamTimes(server.url, [{role: "system", content: systemPrompt(id)}, {role: "user", content: `Turn ${n}`}], 8);
      saves++;
    }
  })();
  await Promise.all([...streaming, conversations]);
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const saved = Number(/llm_prompt_cache_operations_total\{[^}]*op="save"[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0);
  return {
    ttft_p50_ms: round(percentile(ttfts, 50)),
    ttft_p99_ms: round(percentile(ttfts, 99)),
    gap_p50_ms: round(percentile(gaps, 50)),
    gap_p99_ms: round(percentile(gaps, 99)),
    gap_max_ms: round(Math.max(...gaps)),
    streams: ttfts.length,
    conversation_turns: saves,
    states_saved: saved
  };
}

/** Peak RSS of a process so far (VmHWM), MiB; 0 once it is gone. */
function peakMiB(pid: number): number {
  try {
    return Math.round(Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024);
  } catch {
    return 0;
  }
}

async function logprobsCell(dir: string, model: string, logprobs: boolean): Promise<Record<string, number | string>> {
  const server = await start(dir, model, {PARALLEL_SLOTS: "1"});
  const pid = server.child.pid!;
  const loaded = peakMiB(pid);
  // Sampled while the request runs: a server that dies of it takes its /proc entry along.
  let peak = loaded;
  const sampler = setInterval(() => {
    if (server.child.exitCode === null) peak = Math.max(peak, peakMiB(pid));
  }, 250);
  const started = performance.now();
  let outcome = "ok";
  let tokens = 0;
  try {
    const res = await fetch(`${server.url}/v1/chat/completions`, {
      method: "POST",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({model: "m", messages: [{role: "user", content: "Tell me a long story."}], max_tokens: 1000, temperature: 1, seed: 1, ...(logprobs ? {logprobs: true, top_logprobs: 5} : {})}),
      signal: AbortSignal.timeout(300_000)
    });
    const body = (await res.json()) as {usage?: {completion_tokens: number}};
    tokens = body.usage?.completion_tokens ?? 0;
    if (!res.ok) outcome = `HTTP ${res.status}`;
  } catch (error) {
    await new Promise((r) => setTimeout(r, 1000));
    outcome = server.child.exitCode !== null || server.child.signalCode !== null ? `server died (${server.child.signalCode ?? `exit ${server.child.exitCode}`})` : `failed: ${String(error).slice(0, 60)}`;
  }
  clearInterval(sampler);
  const seconds = round((performance.now() - started) / 1000, 2);
  if (server.child.exitCode === null) peak = Math.max(peak, peakMiB(pid));
  await server.stop().catch(() => undefined);
  return {outcome, completion_tokens: tokens, seconds, rss_loaded_mib: loaded, rss_peak_mib: peak};
}

const rows: Array<Record<string, string | number>> = [];
for (const [label, dir, env] of [
  ["A (before)", values.a, {}],
  ["B (after)", values.b, {}],
  ["B, PROMPT_CACHE_BYTES=0", values.b, {PROMPT_CACHE_BYTES: "0"}]
] as const) {
  if (values.only === "logprobs") break;
  const server = await start(dir, benchModel(values.model, 2048), env);
  try {
    rows.push({build: label, ...(await stallCell(server))});
  } finally {
    await server.stop();
  }
}
printTable(`Prompt-cache stalls: ${values.model}, 4 slots, 1 thread; 3 streaming clients (64 tokens) beside a conversation client forcing a save and a restore each turn, ${SECONDS} s`, rows);

mkdirSync(MODEL_DIR, {recursive: true});
const vocabModel = join(MODEL_DIR, "synthetic-tiny-vocab128k.gguf");
if (values.only !== "stalls" && !existsSync(vocabModel)) writeSyntheticModel({shape: SHAPES["tiny"]!, tokenizerFrom: TINY_MODEL, out: vocabModel, vocab: 128_256, textOnly: true, seed: 3});
const memory = values.only === "stalls" ? [] : [
  {build: "A (before)", request: "logprobs", ...(await logprobsCell(values.a, vocabModel, true))},
  {build: "B (after)", request: "logprobs", ...(await logprobsCell(values.b, vocabModel, true))},
  {build: "B (after)", request: "no logprobs", ...(await logprobsCell(values.b, vocabModel, false))}
];
printTable("logprobs: 1,000 tokens with top_logprobs 5 on a 128k vocabulary (the tiny model's shape), 1 slot", memory);
writeResults("server-faults", {stalls: rows, logprobs: memory});
