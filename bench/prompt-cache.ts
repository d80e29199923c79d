/**
 * More conversations than slots: the prompt cache (saved slot states) against the same
 * server without it, and llama-server with and without its own (`--cache-ram`), side by
 * side in one run. Each of BENCH_CONVERSATIONS chats has its own ~1,000-token system prompt;
 * one client visits them in turn for BENCH_TURNS turns, each turn carrying the whole
 * conversation so far (the model's answers included). With 4 slots and 8 conversations,
 * every visit finds its slot taken by another conversation: without a cache of saved
 * states the whole history is evaluated again each turn.
 *
 *   npm run bench:prompt-cache            BENCH_MODEL=20m BENCH_CONVERSATIONS=8 BENCH_TURNS=3
 *
 * Servers pinned to the last core, the client on the others; TTFT from the first content
 * delta, streaming; turn 1 (all cold) is reported apart from the later turns.
 */
import {spawnSync, type ChildProcess} from "node:child_process";
import {cpus} from "node:os";
import {ServerProcess} from "../dev/processes/server.js";
import {parseMetrics, sample} from "../dev/metrics-text.js";
import {benchModel, startLlamaServer} from "./lib/peers.js";
import {printTable, writeResults} from "./lib/report.js";
import {readSse} from "./lib/sse.js";
import {percentile, round} from "./lib/stats.js";

const env = (k: string, d: string) => process.env[k] ?? d;
const MODEL = env("BENCH_MODEL", "20m");
const CONVERSATIONS = Number(env("BENCH_CONVERSATIONS", "8"));
const TURNS = Number(env("BENCH_TURNS", "3"));
const PEER = env("BENCH_PEER", "1") !== "0";
const SLOTS = 4;
const CONTEXT = 2048;
const MAX_TOKENS = 16;
const CORE = String(cpus().length - 1);
spawnSync("taskset", ["-a", "-p", "-c", `0-${Math.max(0, cpus().length - 2)}`, String(process.pid)]);

type Message = {role: "system" | "user" | "assistant"; content: string};
interface Turn {
  turn: number;
  ttftMs: number;
  promptTokens: number;
  cachedTokens: number;
}

/** One streamed chat turn; the answer text, TTFT and usage. */
async function chat(url: string, model: string, messages: Message[]): Promise<{text: string; ttftMs: number; promptTokens: number; cachedTokens: number}> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: {"content-type": "application/json", "cache-control": "no-store"},
    body: JSON.stringify({model, messages, max_tokens: MAX_TOKENS, temperature: 0, stream: true, stream_options: {include_usage: true}})
  });
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}: ${await res.text()}`);
  const reading = await readSse(res, /"content":"[^"]/, true);
  return {text: reading.text, ttftMs: (reading.firstAt ?? NaN) - t0, promptTokens: reading.promptTokens, cachedTokens: reading.cachedTokens};
}

const system = (seed: number) => `You are story teller number ${seed}. Tell short, kind stories for small children, with simple words. `.repeat(18);
const users = ["Tell me a story about a dog.", "And what did the cat do?", "How did it end?", "Tell me another one.", "Who was the hero?"];

async function conversations(url: string, model: string): Promise<Turn[]> {
  const histories: Message[][] = Array.from({length: CONVERSATIONS}, (_, c) => [{role: "system", content: system(c + Math.floor(Math.random() * 1e6))}]);
  const turns: Turn[] = [];
  for (let turn = 0; turn < TURNS; turn++) {
    for (const history of histories) {
      history.push({role: "user", content: users[turn % users.length]!});
      const answer = await chat(url, model, history);
      history.push({role: "assistant", content: answer.text});
      turns.push({turn: turn + 1, ttftMs: answer.ttftMs, promptTokens: answer.promptTokens, cachedTokens: answer.cachedTokens});
    }
  }
  return turns;
}

function summary(target: string, turns: Turn[]) {
  const cold = turns.filter((t) => t.turn === 1);
  const later = turns.filter((t) => t.turn > 1);
  const share = (ts: Turn[]) => round((100 * ts.reduce((a, t) => a + t.cachedTokens, 0)) / ts.reduce((a, t) => a + t.promptTokens, 0), 0);
  return {
    target,
    "turn 1 p50 ms": round(percentile(cold.map((t) => t.ttftMs), 50), 0),
    "later turns p50 ms": round(percentile(later.map((t) => t.ttftMs), 50), 0),
    "later turns p99 ms": round(percentile(later.map((t) => t.ttftMs), 99), 0),
    "later prompt tokens": round(percentile(later.map((t) => t.promptTokens), 50), 0),
    "later cached %": share(later)
  };
}

const path = benchModel(MODEL, CONTEXT);
const rows: Array<Record<string, string | number>> = [];
const paddockEnv = {MODEL_PATH: path, MODEL_NAME: "m", PARALLEL_SLOTS: String(SLOTS), THREADS: "1", CONTEXT_SIZE: String(CONTEXT), CACHE_MODE: "off", CHAT_WRAPPER: "chatML"};
let saves = 0;
for (const [target, extra] of [["paddock, prompt cache", {}], ["paddock, PROMPT_CACHE_BYTES=0", {PROMPT_CACHE_BYTES: "0"}]] as const) {
  const server = await ServerProcess.start({...paddockEnv, ...extra}, {});
  spawnSync("taskset", ["-a", "-p", "-c", CORE, String(server.child.pid)]);
  try {
    rows.push(summary(target, await conversations(server.url, "m")));
    if (target === "paddock, prompt cache") saves = sample(parseMetrics(await server.metrics()), 'llm_prompt_cache_operations_total{op="save"}');
  } finally {
    await server.stop();
  }
}
if (PEER) {
  for (const [target, args] of [["llama-server (--cache-ram 8192, default)", []], ["llama-server --cache-ram 0", ["--cache-ram", "0"]]] as const) {
    const peer: {url: string; child: ChildProcess} = await startLlamaServer(path, {slots: SLOTS, context: CONTEXT, threads: 1, core: CORE, extraArgs: args});
    try {
      rows.push(summary(target, await conversations(peer.url, "m")));
    } finally {
      peer.child.kill("SIGTERM");
    }
  }
}
printTable(`${CONVERSATIONS} conversations on ${SLOTS} slots, model ${MODEL}, 1 client, ${TURNS} turns each, ~1,000-token system prompts, max_tokens ${MAX_TOKENS}, streaming: TTFT`, rows);
console.log(`\nprompt cache saves: ${saves}`);
console.log(`wrote ${writeResults("prompt-cache", {settings: {MODEL, CONVERSATIONS, TURNS, SLOTS, CONTEXT, MAX_TOKENS}, rows})}`);
