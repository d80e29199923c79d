/**
 * Inference server throughput vs. node-llama-cpp driven in-process (the baseline, no HTTP),
 * on the tiny model, same slots, threads and prompts, measured in one run.
 *
 *   npm run bench:server      (BENCH_REQUESTS_PER_CLIENT=8, BENCH_ROUNDS=3 by default)
 *
 * Prints a table and writes bench/results/server-throughput.json.
 */
import {CPU_BUILD_OPTIONS} from "./lib/peers.js";
import {getLlama, LlamaCompletion, LlamaLogLevel, type LlamaContextSequence} from "node-llama-cpp";
import {ServerProcess} from "../dev/processes/server.js";
import {TINY_MODEL, TINY_MODEL_NAME} from "../dev/paths.js";
import {printTable, writeResults} from "./lib/report.js";
import {readSse} from "./lib/sse.js";
import {percentile, round} from "./lib/stats.js";

const SLOTS = 8;
const THREADS = 1;
const MAX_TOKENS = 64;
const CONCURRENCY = [1, 4, 8];
const PER_CLIENT = Number(process.env["BENCH_REQUESTS_PER_CLIENT"] ?? 8);
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 3);
const PROMPTS = [
  "Once upon a time",
  "The little dog",
  "One day, a girl named Sue",
  "Tom had a red ball",
  "In the park there was",
  "The sun was hot and",
  "Mom said to Ben",
  "A big cat sat"
];

interface Sample {
  ttftMs: number | undefined;
  totalMs: number;
  tokens: number;
}

interface Row {
  target: "in-process" | "server";
  mode: "stream" | "non-stream";
  concurrency: number;
  requests: number;
  req_per_s: number;
  tok_per_s: number;
  ttft_p50_ms: number;
  ttft_p99_ms: number;
  e2e_p50_ms: number;
  e2e_p99_ms: number;
}

/** Runs `concurrency` clients, each sending PER_CLIENT requests back to back. */
async function load(concurrency: number, send: Send) {
  const samples: Sample[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({length: concurrency}, async (_, client) => {
      for (let i = 0; i < PER_CLIENT; i++) samples.push(await send(PROMPTS[(client + i) % PROMPTS.length]!, client));
    })
  );
  return {samples, seconds: (performance.now() - started) / 1000};
}

function row(target: Row["target"], mode: Row["mode"], concurrency: number, r: {samples: Sample[]; seconds: number}): Row {
  const ttft = r.samples.flatMap((s) => (s.ttftMs === undefined ? [] : [s.ttftMs]));
  const total = r.samples.map((s) => s.totalMs);
  const tokens = r.samples.reduce((a, s) => a + s.tokens, 0);
  return {
    target,
    mode,
    concurrency,
    requests: r.samples.length,
    req_per_s: round(r.samples.length / r.seconds),
    tok_per_s: round(tokens / r.seconds, 0),
    ttft_p50_ms: round(percentile(ttft, 50), 2),
    ttft_p99_ms: round(percentile(ttft, 99), 2),
    e2e_p50_ms: round(percentile(total, 50), 1),
    e2e_p99_ms: round(percentile(total, 99), 1)
  };
}

type Send = (prompt: string, client: number) => Promise<Sample>;

/** The baseline: one context with SLOTS sequences, each client on its own sequence. */
async function inProcessTarget(): Promise<{send: Send; close: () => Promise<void>}> {
  const llama = await getLlama({gpu: false, build: "never", cmakeOptions: CPU_BUILD_OPTIONS, maxThreads: THREADS, logLevel: LlamaLogLevel.error});
  const model = await llama.loadModel({modelPath: TINY_MODEL});
  const context = await model.createContext({sequences: SLOTS, contextSize: 2048, threads: THREADS});
  const sequences: LlamaContextSequence[] = Array.from({length: SLOTS}, () => context.getSequence());
  const send: Send = async (prompt, client) => {
    const t0 = performance.now();
    let first: number | undefined;
    let tokens = 0;
    const completion = new LlamaCompletion({contextSequence: sequences[client]!});
    await completion.generateCompletionWithMeta(prompt, {
      maxTokens: MAX_TOKENS,
      temperature: 0,
      repeatPenalty: false,
      disableContextShift: true,
      onToken: (t) => {
        first ??= performance.now();
        tokens += t.length;
      }
    });
    completion.dispose({disposeSequence: false});
    return {ttftMs: first! - t0, totalMs: performance.now() - t0, tokens};
  };
  return {send, close: () => llama.dispose()};
}

/** The server over HTTP, streaming (TTFT = first text chunk) or not (TTFT not observable). */
function httpSender(url: string, stream: boolean): Send {
  return async (prompt) => {
    const t0 = performance.now();
    const res = await fetch(`${url}/v1/completions`, {
      method: "POST",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({model: TINY_MODEL_NAME, prompt, max_tokens: MAX_TOKENS, temperature: 0, stream, stream_options: stream ? {include_usage: true} : undefined})
    });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    if (!stream) {
      const body = (await res.json()) as {usage: {completion_tokens: number}};
      return {ttftMs: undefined, totalMs: performance.now() - t0, tokens: body.usage.completion_tokens};
    }
    const {firstAt, completionTokens} = await readSse(res, /"text":"[^"]/);
    return {ttftMs: firstAt! - t0, totalMs: performance.now() - t0, tokens: completionTokens};
  };
}

/** Median of each numeric column over rounds of the same cell. */
function medianRow(rounds: Row[]): Row {
  const pick = (k: keyof Row) => percentile(rounds.map((r) => r[k] as number), 50);
  return {
    ...rounds[0]!,
    requests: rounds.reduce((a, r) => a + r.requests, 0),
    req_per_s: pick("req_per_s"),
    tok_per_s: pick("tok_per_s"),
    ttft_p50_ms: pick("ttft_p50_ms"),
    ttft_p99_ms: pick("ttft_p99_ms"),
    e2e_p50_ms: pick("e2e_p50_ms"),
    e2e_p99_ms: pick("e2e_p99_ms")
  };
}

// Baseline and server are measured back to back within each round and level, so slow
// drift of this shared VM hits both alike; each cell reports the median over ROUNDS.
const baseline = await inProcessTarget();
const server = await ServerProcess.start({PARALLEL_SLOTS: String(SLOTS), THREADS: String(THREADS), MAX_QUEUE: "256", CACHE_MODE: "off"});
const targets: Array<[Row["target"], Row["mode"], Send]> = [
  ["in-process", "stream", baseline.send],
  ["server", "stream", httpSender(server.url, true)],
  ["server", "non-stream", httpSender(server.url, false)]
];
const cells = new Map<string, Row[]>();
try {
  for (const [, , send] of targets) await load(SLOTS, send); // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of CONCURRENCY) {
      for (const [target, mode, send] of targets) {
        const key = `${target}/${mode}/${c}`;
        cells.set(key, [...(cells.get(key) ?? []), row(target, mode, c, await load(c, send))]);
      }
    }
  }
} finally {
  await server.stop();
  await baseline.close();
}
const rows = [...cells.values()].map(medianRow).sort((a, b) => a.target.localeCompare(b.target) || a.mode.localeCompare(b.mode) || a.concurrency - b.concurrency);
printTable(
  `Completions, tiny model, max_tokens ${MAX_TOKENS}, ${SLOTS} slots, ${THREADS} thread; median of ${ROUNDS} interleaved rounds of ${PER_CLIENT} requests per client`,
  rows as unknown as Array<Record<string, number | string>>
);

const at = (target: Row["target"], mode: Row["mode"], c: number) => rows.find((r) => r.target === target && r.mode === mode && r.concurrency === c)!;
const goals = {
  tokenThroughputRatioC8Stream: round(at("server", "stream", 8).tok_per_s / at("in-process", "stream", 8).tok_per_s, 3),
  tokenThroughputRatioC8NonStream: round(at("server", "non-stream", 8).tok_per_s / at("in-process", "stream", 8).tok_per_s, 3),
  ttftP99RatioC8vsC1: round(at("server", "stream", 8).ttft_p99_ms / at("server", "stream", 1).ttft_p99_ms, 2),
  inProcessTtftP99RatioC8vsC1: round(at("in-process", "stream", 8).ttft_p99_ms / at("in-process", "stream", 1).ttft_p99_ms, 2)
};
printTable("Goals (server >= 0.9 of in-process tokens/s at c=8; TTFT p99 c=8 <= 2x c=1)", [
  {
    "tok/s ratio c=8 stream": goals.tokenThroughputRatioC8Stream,
    "tok/s ratio c=8 non-stream": goals.tokenThroughputRatioC8NonStream,
    "TTFT p99 c8/c1 server": goals.ttftP99RatioC8vsC1,
    "TTFT p99 c8/c1 in-process": goals.inProcessTtftP99RatioC8vsC1
  }
]);
console.log(`\nwrote ${writeResults("server", {rows, goals, rounds: [...cells.entries()]})}`);
