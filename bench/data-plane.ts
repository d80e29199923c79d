/**
 * The data plane side by side, in one run: Paddock's server over HTTP, node-llama-cpp driven
 * in-process (no HTTP, the floor of what the server can do), and llama.cpp's llama-server
 * (the peer, bench/peers/build-llama-server.sh), on the same model file with the same slots,
 * threads and context. Models: the tiny one and synthetic ones of real shapes
 * (dev/models/synthetic.ts). Then a shared-prefix workload: one long system prompt with
 * varied user turns, against distinct prompts of the same length.
 *
 *   npm run bench:data-plane
 *   BENCH_MODELS=tiny,20m,110m BENCH_CONCURRENCY=1,8,32 BENCH_PER_CLIENT=4 BENCH_MAX_TOKENS=16
 *   BENCH_PEER=0 skips llama-server.
 *   BENCH_MAPPED=1 adds a second Paddock server with MODEL_MMAP=on ("paddock mapped": the
 *   weights in the page cache's 4 KiB pages, as before huge pages; llama-server maps them too).
 *
 * Servers and the in-process engine run pinned to the last core (taskset), the load generator
 * on the others. Each cell runs the three targets back to back, each for BENCH_PER_CLIENT
 * requests per client and at least BENCH_CELL_SECONDS (3); medians of BENCH_ROUNDS
 * interleaved rounds.
 *
 * Fair by construction: all three render the same chat template (ChatML; the models here
 * carry none, and the servers' fallbacks differ: 42 vs 64 tokens for one short turn), and
 * every "distinct" prompt is new to the whole run. llama-server keeps past prompts in a
 * host-memory cache (--cache-ram, 8 GiB by default), so a prompt repeated from an earlier
 * cell costs it one token: that measures a cache, not the engine.
 */
import {spawnSync} from "node:child_process";
import {cpus} from "node:os";
import {ChatMLChatWrapper, getLlama, LlamaCompletion, LlamaLogLevel, type LlamaContextSequence} from "node-llama-cpp";
import {ServerProcess} from "../dev/processes/server.js";
import {waitForAllStrategy} from "../inference-image/src/engine/batch-strategy.js";
import {parseMetrics, sample} from "../dev/metrics-text.js";
import {CPU_BUILD_OPTIONS, benchModel, startLlamaServer} from "./lib/peers.js";
import {printTable, writeResults} from "./lib/report.js";
import {readSse} from "./lib/sse.js";
import {percentile, round} from "./lib/stats.js";

const env = (k: string, d: string) => process.env[k] ?? d;
const MODELS = env("BENCH_MODELS", "tiny,20m,110m").split(",");
const CONCURRENCY = env("BENCH_CONCURRENCY", "1,8,32").split(",").map(Number);
const PER_CLIENT = Number(env("BENCH_PER_CLIENT", "4"));
/** Seconds a cell runs at least: 4 requests on the tiny model are over in 50 ms, all noise. */
const CELL_SECONDS = Number(env("BENCH_CELL_SECONDS", "3"));
const MAX_TOKENS = Number(env("BENCH_MAX_TOKENS", "16"));
const ROUNDS = Number(env("BENCH_ROUNDS", "1"));
const SLOTS = 4;
const THREADS = 1;
const CONTEXT = 2048;
const PEER = env("BENCH_PEER", "1") !== "0";
const MAPPED = env("BENCH_MAPPED", "0") === "1";
const SERVER_CORE = String(cpus().length - 1);
const LOAD_CORES = `0-${Math.max(0, cpus().length - 2)}`;
/**
 * Moves this process (all its threads) to `cores`. The in-process target runs pinned to the
 * server core like the servers, so it has the same CPU budget: its main thread and
 * llama.cpp's share one core, as the server's do (unpinned, it had a second core for its
 * JavaScript and looked faster than it is).
 */
const pinSelf = (cores: string) => spawnSync("taskset", ["-a", "-p", "-c", cores, String(process.pid)]);
pinSelf(LOAD_CORES);

type Target = "paddock" | "paddock mapped" | "in-process" | "llama-server";
interface Sample {
  ttftMs: number | undefined;
  totalMs: number;
  tokens: number;
  promptTokens: number;
}
/** One request: a chat with an optional system prompt. */
interface Ask {
  system?: string;
  user: string;
}
type Send = (ask: Ask, client: number, stream: boolean) => Promise<Sample>;

const USERS = ["Tell me a story about a dog.", "What did the cat do?", "Sue went to the park.", "Tom had a red ball.", "The sun was hot.", "Mom said to Ben", "A big fish swam.", "Lily saw a bird."];

/** OpenAI chat over HTTP against Paddock or llama-server; TTFT from the first content delta. */
function httpSender(url: string, model: string): Send {
  return async (ask, _client, stream) => {
    const t0 = performance.now();
    const messages = [...(ask.system ? [{role: "system", content: ask.system}] : []), {role: "user", content: ask.user}];
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: {"content-type": "application/json", "cache-control": "no-store"},
      body: JSON.stringify({model, messages, max_tokens: MAX_TOKENS, temperature: 0, stream, ...(stream ? {stream_options: {include_usage: true}} : {})})
    });
    if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}: ${await res.text()}`);
    if (!stream) {
      const {usage} = (await res.json()) as {usage: {completion_tokens: number; prompt_tokens: number}};
      return {ttftMs: undefined, totalMs: performance.now() - t0, tokens: usage.completion_tokens, promptTokens: usage.prompt_tokens};
    }
    const {firstAt, completionTokens, promptTokens} = await readSse(res, /"content":"[^"]/);
    return {ttftMs: firstAt === undefined ? undefined : firstAt - t0, totalMs: performance.now() - t0, tokens: completionTokens, promptTokens};
  };
}

/**
 * node-llama-cpp in this process: one context of SLOTS sequences, a client per sequence, the
 * model's chat template, and the server's batch strategy (with node-llama-cpp's own, one
 * sequence trails every decode and this is no floor at c > 1).
 */
async function inProcess(path: string) {
  const llama = await getLlama({gpu: false, build: "never", cmakeOptions: CPU_BUILD_OPTIONS, maxThreads: THREADS, logLevel: LlamaLogLevel.error});
  // Read into memory, as the server reads a model on a CPU (MODEL_MMAP=auto: huge pages).
  const model = await llama.loadModel({modelPath: path, useMmap: false});
  let generating = 0;
  const context = await model.createContext({sequences: SLOTS, contextSize: CONTEXT, threads: THREADS, batching: {itemPrioritizationStrategy: waitForAllStrategy(() => generating)}});
  const free: LlamaContextSequence[] = Array.from({length: SLOTS}, () => context.getSequence());
  const waiting: Array<(s: LlamaContextSequence) => void> = [];
  // More clients than slots wait in FIFO order, as the servers' queues do.
  const acquire = () => new Promise<LlamaContextSequence>((resolve) => (free.length > 0 ? resolve(free.shift()!) : waiting.push(resolve)));
  const release = (s: LlamaContextSequence) => (waiting.length > 0 ? waiting.shift()!(s) : free.push(s));
  const wrapper = new ChatMLChatWrapper();
  const send: Send = async (ask) => {
    const t0 = performance.now();
    let first: number | undefined;
    let tokens = 0;
    const history = [...(ask.system ? [{type: "system" as const, text: ask.system}] : []), {type: "user" as const, text: ask.user}, {type: "model" as const, response: []}];
    const state = wrapper.generateContextState({chatHistory: history});
    const input = state.contextText.tokenize(model.tokenizer).slice(1);
    const sequence = await acquire();
    const sampledBefore = sequence.tokenMeter.usedOutputTokens;
    const completion = new LlamaCompletion({contextSequence: sequence});
    generating++;
    try {
      await completion.generateCompletionWithMeta(input, {
        maxTokens: MAX_TOKENS,
        temperature: 0,
        repeatPenalty: false,
        disableContextShift: true,
        customStopTriggers: state.stopGenerationTriggers,
        onToken: () => {
          first ??= performance.now();
        }
      });
    } finally {
      generating--;
    }
    // Every sampled token, as the servers count them (onToken misses held-back partial characters).
    tokens = sequence.tokenMeter.usedOutputTokens - sampledBefore;
    completion.dispose({disposeSequence: false});
    release(sequence);
    return {ttftMs: first === undefined ? undefined : first - t0, totalMs: performance.now() - t0, tokens, promptTokens: input.length + 1};
  };
  return {send, close: () => llama.dispose()};
}

const errors = new Map<string, number>();
async function load(concurrency: number, send: Send, stream: boolean, asks: (client: number, i: number) => Ask, label = "", perClient = PER_CLIENT, seconds = CELL_SECONDS) {
  const samples: Sample[] = [];
  let failed = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(
    Array.from({length: concurrency}, async (_, client) => {
      for (let i = 0; i < perClient || performance.now() < until; i++) {
        try {
          samples.push(await send(asks(client, i), client, stream));
        } catch (error) {
          failed++;
          const key = `${label}: ${error instanceof Error ? `${error.message} ${String((error as {cause?: unknown}).cause ?? "")}`.slice(0, 160) : String(error)}`;
          errors.set(key, (errors.get(key) ?? 0) + 1);
        }
      }
    })
  );
  const elapsed = (performance.now() - started) / 1000;
  const ttft = samples.flatMap((s) => (s.ttftMs === undefined ? [] : [s.ttftMs]));
  const total = samples.map((s) => s.totalMs);
  return {
    failed,
    req_per_s: round(samples.length / elapsed, 2),
    tok_per_s: round(samples.reduce((a, s) => a + s.tokens, 0) / elapsed, 0),
    prompt_tok: round(samples.reduce((a, s) => a + s.promptTokens, 0) / Math.max(1, samples.length), 1),
    ttft_p50_ms: round(percentile(ttft, 50), 1),
    ttft_p99_ms: round(percentile(ttft, 99), 1),
    e2e_p50_ms: round(percentile(total, 50), 1),
    e2e_p99_ms: round(percentile(total, 99), 1)
  };
}
type Cell = Awaited<ReturnType<typeof load>>;
const median = (cells: Cell[]): Cell => Object.fromEntries(Object.keys(cells[0]!).map((k) => [k, percentile(cells.map((c) => c[k as keyof Cell]), 50)])) as Cell;

const rssOf = (pid: number | undefined) => {
  const r = spawnSync("ps", ["-o", "rss=", "-p", String(pid)], {encoding: "utf8"});
  return Math.round(Number(r.stdout.trim()) / 1024);
};

const rows: Array<Record<string, string | number>> = [];
const memory: Array<Record<string, string | number>> = [];
const prefixRows: Array<Record<string, string | number>> = [];
for (const name of MODELS) {
  const path = benchModel(name, CONTEXT);
  const servedAs = name === "tiny" ? "stories260K" : `synthetic-${name}`;
  const startPaddock = async (extra: Record<string, string> = {}) => {
    const server = await ServerProcess.start({MODEL_PATH: path, MODEL_NAME: servedAs, PARALLEL_SLOTS: String(SLOTS), THREADS: String(THREADS), CONTEXT_SIZE: String(CONTEXT), MAX_QUEUE: "1024", CACHE_MODE: "off", CHAT_WRAPPER: "chatML", ...extra}, {});
    // Pin the server's process (all threads) to the server core, as llama-server is.
    spawnSync("taskset", ["-a", "-p", "-c", SERVER_CORE, String(server.child.pid)]);
    return server;
  };
  const paddock = await startPaddock();
  const mapped = MAPPED ? await startPaddock({MODEL_MMAP: "on"}) : undefined;
  const local = await inProcess(path);
  const peer = PEER ? await startLlamaServer(path, {slots: SLOTS, context: CONTEXT, threads: THREADS, core: SERVER_CORE}) : undefined;
  const targets: Array<[Target, Send]> = [
    ["paddock", httpSender(paddock.url, servedAs)],
    ...(mapped ? [["paddock mapped", httpSender(mapped.url, servedAs)] as [Target, Send]] : []),
    ["in-process", local.send],
    ...(peer ? [["llama-server", httpSender(peer.url, servedAs)] as [Target, Send]] : [])
  ];
  try {
    let asked = 0;
    // The request's number first: after it, the user turns repeat 8 texts, and a prompt that
    // shares its first 25-28 tokens with an earlier one is not distinct. With the number last,
    // llama-server's host-memory prompt cache reused 24-28 of ~55 tokens per request at c=8
    // and Paddock's slots 14-15 (a slot's prompt cache keeps only longer prompts), so the
    // cell measured that cache (110M c=8: 0.67-0.70x; with the number first 0.74-0.81x, both
    // reusing the template's 15-17 tokens).
    const distinct = (client: number, i: number): Ask => ({user: `(${++asked}) ${USERS[(client + i) % USERS.length]}`});
    // The in-process target's cells run with this process on the server core.
    const measure = async (target: Target, run: () => Promise<Cell>): Promise<Cell> => {
      if (target !== "in-process") return run();
      pinSelf(SERVER_CORE);
      try {
        return await run();
      } finally {
        pinSelf(LOAD_CORES);
      }
    };
    for (const [target, send] of targets) await measure(target, () => load(2, send, false, distinct, "warm-up", PER_CLIENT, 0));
    const cells = new Map<string, Cell[]>();
    for (let r = 0; r < ROUNDS; r++) {
      for (const c of CONCURRENCY) {
        for (const stream of [false, true]) {
          for (const [target, send] of targets) {
            const key = `${target}|${c}|${stream}`;
            cells.set(key, [...(cells.get(key) ?? []), await measure(target, () => load(c, send, stream, distinct, `${name} ${target} c=${c}${stream ? " stream" : ""}`))]);
          }
        }
      }
    }
    for (const c of CONCURRENCY) {
      for (const stream of [false, true]) {
        const get = (t: Target) => (cells.has(`${t}|${c}|${stream}`) ? median(cells.get(`${t}|${c}|${stream}`)!) : undefined);
        const ours = get("paddock")!;
        const inproc = get("in-process")!;
        const peerCell = get("llama-server");
        const mappedCell = get("paddock mapped");
        for (const [t, cell] of [["paddock", ours], ["paddock mapped", mappedCell], ["in-process", inproc], ["llama-server", peerCell]] as const) {
          if (!cell) continue;
          rows.push({model: name, c, stream: stream ? "yes" : "no", target: t, ...cell});
        }
        rows.push({
          model: name,
          c,
          stream: stream ? "yes" : "no",
          target: "ratios",
          failed: "-",
          req_per_s: peerCell ? round(ours.req_per_s / peerCell.req_per_s, 2) : "-",
          tok_per_s: round(ours.tok_per_s / inproc.tok_per_s, 2),
          prompt_tok: "-",
          ttft_p50_ms: peerCell && stream ? round(ours.ttft_p50_ms / peerCell.ttft_p50_ms, 2) : "-",
          ttft_p99_ms: peerCell && stream ? round(ours.ttft_p99_ms / peerCell.ttft_p99_ms, 2) : "-",
          e2e_p50_ms: peerCell ? round(ours.e2e_p50_ms / peerCell.e2e_p50_ms, 2) : "-",
          e2e_p99_ms: peerCell ? round(ours.e2e_p99_ms / peerCell.e2e_p99_ms, 2) : "-"
        });
        if (mappedCell && peerCell) rows.push({model: name, c, stream: stream ? "yes" : "no", target: "mapped / llama-server", failed: "-", req_per_s: round(mappedCell.req_per_s / peerCell.req_per_s, 2), tok_per_s: "-", prompt_tok: "-", ttft_p50_ms: "-", ttft_p99_ms: "-", e2e_p50_ms: round(mappedCell.e2e_p50_ms / peerCell.e2e_p50_ms, 2), e2e_p99_ms: round(mappedCell.e2e_p99_ms / peerCell.e2e_p99_ms, 2)});
      }
    }

    // Shared prefix: a ~1,000-token system prompt, varied user turns, one client (TTFT is
    // prompt processing); against distinct system prompts of the same length.
    const system = (seed: number) => `You are story teller number ${seed}. Tell short, kind stories for small children, with simple words. `.repeat(18);
    const shared = (_c: number, i: number): Ask => ({system: system(0), user: `${USERS[i % USERS.length]} (${++asked})`});
    const fresh = (_c: number, i: number): Ask => ({system: system(1000 + i + Math.floor(Math.random() * 1e6)), user: `${USERS[i % USERS.length]} (${++asked})`});
    for (const [target, send] of targets.filter(([t]) => t !== "in-process")) {
      await load(1, send, true, shared, "prefix", PER_CLIENT, 0); // puts the prefix in a slot
      const s = await load(1, send, true, shared, "prefix", PER_CLIENT, 0);
      const d = await load(1, send, true, fresh, "prefix", PER_CLIENT, 0);
      prefixRows.push({model: name, target, "shared TTFT p50 ms": s.ttft_p50_ms, "distinct TTFT p50 ms": d.ttft_p50_ms, "shared/distinct": round(s.ttft_p50_ms / d.ttft_p50_ms, 2)});
    }
    const metrics = parseMetrics(await paddock.metrics());
    memory.push({
      model: name,
      "paddock RSS MiB": rssOf(paddock.child.pid),
      ...(mapped ? {"paddock mapped RSS MiB": rssOf(mapped.child.pid)} : {}),
      "llm_model_memory_bytes ram MiB": round(sample(metrics, 'llm_model_memory_bytes{device="ram"}') / 2 ** 20, 1),
      "llama-server RSS MiB": peer ? rssOf(peer.child.pid) : "-"
    });
  } finally {
    await paddock.stop();
    await mapped?.stop();
    await local.close();
    peer?.child.kill("SIGTERM");
  }
}

printTable(`Chat, ${SLOTS} slots, ${THREADS} thread, servers pinned to core ${SERVER_CORE}, max_tokens ${MAX_TOKENS}, ${PER_CLIENT} requests per client and at least ${CELL_SECONDS} s per cell, median of ${ROUNDS} round(s). Ratios: req/s and latencies Paddock / llama-server, tok/s Paddock / in-process`, rows);
printTable("Shared ~1,000-token system prompt vs distinct ones, 1 client, streaming: TTFT", prefixRows);
printTable("Memory after the run", memory);
if (errors.size > 0) printTable("Failed requests", [...errors].map(([error, count]) => ({error, count})));
console.log(`\nwrote ${writeResults("data-plane", {settings: {MODELS, CONCURRENCY, PER_CLIENT, CELL_SECONDS, MAX_TOKENS, ROUNDS, SLOTS, THREADS, CONTEXT}, rows, prefixRows, memory, errors: [...errors]})}`);
