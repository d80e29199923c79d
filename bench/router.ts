/**
 * `npm run bench:router`: the router (router/) measured beside what it replaces, in one run.
 *
 * 1. Overhead: chat through the router vs straight to one tiny-model replica, c = 1/8/32,
 *    interleaved rounds, medians; and against a trivial HTTP backend, the router's own ceiling
 *    (router process pinned alone to one core; backend and load generator on the other).
 * 2. Strategies: 4 replicas of a synthetic 20M model (real prompt cost), 8 tenants with their
 *    own ~1,000-token system prompts and varied user turns, one client per tenant, streaming:
 *    per-request round-robin over the replicas (what a request-balancing Service does) vs
 *    LeastLoad vs PrefixHash: TTFT p50/p99, req/s, and the replicas' prompt-cache reuse.
 *    Each strategy gets its own tenants' prompts, so none starts with another's warm slots.
 * 3. Wake: on the local stack (control plane, operator, routers as
 *    pods), a service at zero replicas: first request -> replicas 1 -> first token, beside the
 *    pod's own start (created -> Ready).
 *
 * BENCH_PARTS (default overhead,strategies,wake) picks the parts. Prints tables, writes bench/results/router.json and its section of bench/RESULTS.md.
 */
import {spawn, spawnSync, type ChildProcess} from "node:child_process";
import {existsSync, mkdirSync} from "node:fs";
import {Agent, request as httpRequest} from "node:http";
import {cpus} from "node:os";
import {join, resolve} from "node:path";
import {REPLICA_HEADER} from "../contract/index.js";
import {SHAPES, writeSyntheticModel} from "../dev/models/synthetic.js";
import {parseMetrics, sample} from "../dev/metrics-text.js";
import {REPO_ROOT, TINY_MODEL} from "../dev/paths.js";
import {freePort} from "../dev/processes/ports.js";
import {ServerProcess, sleep} from "../dev/processes/server.js";
import {printTable, writeResults} from "./lib/report.js";
import {readSse} from "./lib/sse.js";
import {percentile, round} from "./lib/stats.js";

const env = (k: string, d: string) => process.env[k] ?? d;
const CONCURRENCY = env("BENCH_CONCURRENCY", "1,8,32").split(",").map(Number);
const PER_CLIENT = Number(env("BENCH_PER_CLIENT", "8"));
const ROUNDS = Number(env("BENCH_ROUNDS", "5"));
const TRIVIAL_SECONDS = Number(env("BENCH_TRIVIAL_SECONDS", "5"));
const TENANT_REQUESTS = Number(env("BENCH_TENANT_REQUESTS", "6"));
const PARTS = new Set(env("BENCH_PARTS", "overhead,strategies,wake").split(","));
const LAST_CORE = String(cpus().length - 1);
const FIRST_CORE = "0";
const ROUTER_ENTRY = resolve(REPO_ROOT, "dist/router/src/main.js");

const pin = (pid: number | undefined, core: string) => spawnSync("taskset", ["-a", "-p", "-c", core, String(pid)]);

/** The router as its own process (as in a pod), on static endpoints; resolves once it listens. */
async function startRouter(urls: string[], strategy: string, core: string): Promise<{url: string; child: ChildProcess}> {
  const port = await freePort();
  const child = spawn(process.execPath, [ROUTER_ENTRY], {
    env: {PATH: process.env["PATH"] ?? "", MODEL_NAME: "m", HOST: "127.0.0.1", PORT: String(port), ROUTER_STATIC_ENDPOINTS: urls.join(","), ROUTER_STRATEGY: strategy, LOG_LEVEL: "warn"},
    stdio: ["ignore", "ignore", "inherit"]
  });
  pin(child.pid, core);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if ((await fetch(`${url}/readyz`).catch(() => undefined))?.ok) return {url, child};
    await sleep(50);
  }
  throw new Error("the router did not start");
}

const stop = async (child: ChildProcess) => {
  child.kill("SIGKILL");
  await new Promise((r) => (child.exitCode !== null ? r(null) : child.once("exit", r)));
};

/** A keep-alive HTTP client far cheaper than fetch: the load generator must outrun what it measures. */
function client(maxSockets: number) {
  const agent = new Agent({keepAlive: true, maxSockets});
  const post = (url: string, body: string) =>
    new Promise<{status: number; text: string; headers: Record<string, unknown>}>((done, fail) => {
      const req = httpRequest(url, {method: "POST", agent, headers: {"content-type": "application/json", "content-length": Buffer.byteLength(body)}}, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => done({status: res.statusCode ?? 0, text, headers: res.headers}));
      });
      req.on("error", fail);
      req.end(body);
    });
  return {post, close: () => agent.destroy()};
}

// ---- 1. Overhead -------------------------------------------------------------------------

async function closedLoop(url: string, concurrency: number, perClient: number, body: (c: number, i: number) => string) {
  const http = client(concurrency);
  const latencies: number[] = [];
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({length: concurrency}, async (_, c) => {
      for (let i = 0; i < perClient; i++) {
        const t0 = performance.now();
        const res = await http.post(`${url}/v1/chat/completions`, body(c, i)).catch(() => ({status: 0}));
        if (res.status === 200) latencies.push(performance.now() - t0);
        else failed++;
      }
    })
  );
  http.close();
  const seconds = (performance.now() - started) / 1000;
  return {req_per_s: latencies.length / seconds, p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99), failed};
}

const overheadRows: Array<Record<string, string | number>> = [];
if (PARTS.has("overhead")) {
  const server = await ServerProcess.start({MODEL_NAME: "m", PARALLEL_SLOTS: "4", THREADS: "1", MAX_QUEUE: "1024", CACHE_MODE: "off"});
  pin(server.child.pid, LAST_CORE);
  const router = await startRouter([server.url], "LeastLoad", FIRST_CORE);
  // The same prompts both ways (greedy, no cache): the same tokens, so only the hop differs.
  const chat = (c: number, i: number) => JSON.stringify({model: "m", messages: [{role: "user", content: `Tell me a story (${c}.${i})`}], max_tokens: 16, temperature: 0});
  try {
    await closedLoop(server.url, 4, 4, chat);
    await closedLoop(router.url, 4, 4, chat);
    for (const c of CONCURRENCY) {
      const direct: Array<Awaited<ReturnType<typeof closedLoop>>> = [];
      const routed: typeof direct = [];
      // At least 48 requests per round: at c = 1, 8 requests made the ratio noise.
      const perClient = Math.max(PER_CLIENT, Math.ceil(48 / c));
      for (let r = 0; r < ROUNDS; r++) {
        direct.push(await closedLoop(server.url, c, perClient, chat));
        routed.push(await closedLoop(router.url, c, perClient, chat));
      }
      const med = (cells: typeof direct, k: keyof (typeof direct)[number]) => percentile(cells.map((x) => x[k]), 50);
      overheadRows.push({
        backend: "tiny model",
        c,
        "direct req/s": round(med(direct, "req_per_s"), 1),
        "router req/s": round(med(routed, "req_per_s"), 1),
        "router/direct": round(med(routed, "req_per_s") / med(direct, "req_per_s"), 2),
        "direct p50 ms": round(med(direct, "p50_ms"), 2),
        "router p50 ms": round(med(routed, "p50_ms"), 2),
        "added p50 ms": round(med(routed, "p50_ms") - med(direct, "p50_ms"), 2),
        failed: direct.concat(routed).reduce((a, x) => a + x.failed, 0)
      });
    }
  } finally {
    await stop(router.child);
    await server.stop();
  }
}

// The router's own ceiling: a backend that answers at once, in its own process on the other core.
if (PARTS.has("overhead")) {
  const backendPort = await freePort();
  const backendSource = `require("node:http").createServer((q, s) => { q.resume(); q.on("end", () => s.writeHead(200, {"content-type": "application/json", "content-length": 11}).end('{"ok":true}')); }).listen(${backendPort}, "127.0.0.1");`;
  const backend = spawn(process.execPath, ["-e", backendSource], {stdio: "ignore"});
  pin(backend.pid, LAST_CORE);
  pin(process.pid, LAST_CORE);
  await sleep(300);
  const backendUrl = `http://127.0.0.1:${backendPort}`;
  const router = await startRouter([backendUrl], "LeastLoad", FIRST_CORE);
  const body = () => JSON.stringify({model: "m", messages: [{role: "user", content: "hi"}]});
  const timed = async (url: string) => {
    const http = client(64);
    let done = 0;
    const latencies: number[] = [];
    const until = performance.now() + TRIVIAL_SECONDS * 1000;
    const started = performance.now();
    await Promise.all(
      Array.from({length: 64}, async () => {
        while (performance.now() < until) {
          const t0 = performance.now();
          await http.post(`${url}/v1/chat/completions`, body());
          latencies.push(performance.now() - t0);
          done++;
        }
      })
    );
    http.close();
    return {rps: done / ((performance.now() - started) / 1000), p50: percentile(latencies, 50)};
  };
  try {
    await timed(router.url);
    const direct = await timed(backendUrl);
    const routed = await timed(router.url);
    overheadRows.push({
      backend: "trivial HTTP",
      c: 64,
      "direct req/s": round(direct.rps, 0),
      "router req/s": round(routed.rps, 0),
      "router/direct": round(routed.rps / direct.rps, 2),
      "direct p50 ms": round(direct.p50, 2),
      "router p50 ms": round(routed.p50, 2),
      "added p50 ms": round(routed.p50 - direct.p50, 2),
      failed: 0
    });
  } finally {
    await stop(router.child);
    await stop(backend);
    spawnSync("taskset", ["-a", "-p", "-c", `0-${LAST_CORE}`, String(process.pid)]);
  }
}
printTable("Router overhead: through the router vs straight to the replica (tiny model: non-streaming, 16 tokens, medians of rounds; trivial: the router alone on one core)", overheadRows);

// ---- 2. Strategies -----------------------------------------------------------------------

const MODEL_DIR = resolve(REPO_ROOT, ".paddock/bench-models");
function model20m(): string {
  mkdirSync(MODEL_DIR, {recursive: true});
  const path = join(MODEL_DIR, "synthetic-20m-text.gguf");
  if (!existsSync(path)) writeSyntheticModel({shape: SHAPES["20m"]!, tokenizerFrom: TINY_MODEL, out: path, seed: 1, contextLength: 2048, textOnly: true});
  return path;
}

const USERS = ["Tell me a story about a dog.", "What did the cat do?", "Sue went to the park.", "Tom had a red ball.", "The sun was hot.", "Mom said to Ben", "A big fish swam.", "Lily saw a bird."];
const systemPrompt = (tenant: string) => `You are the story teller of ${tenant}. Tell short, kind stories for small children, with simple words. `.repeat(18);

const strategyRows: Array<Record<string, string | number>> = [];
if (PARTS.has("strategies")) {
  const path = model20m();
  const replicas = await Promise.all(
    Array.from({length: 4}, () => ServerProcess.start({MODEL_PATH: path, MODEL_NAME: "m", PARALLEL_SLOTS: "4", THREADS: "1", CONTEXT_SIZE: "2048", MAX_QUEUE: "1024", CACHE_MODE: "off"}, {waitReady: true}))
  );
  const urls = replicas.map((r) => r.url);
  const cached = async () => {
    let total = 0;
    for (const r of replicas) total += sample(parseMetrics(await (await fetch(`${r.url}/metrics`)).text()), "llm_prompt_cached_tokens_total");
    return total;
  };
  const prompts = async () => {
    let total = 0;
    for (const r of replicas) total += sample(parseMetrics(await (await fetch(`${r.url}/metrics`)).text()), "llm_prompt_tokens_total");
    return total;
  };
  const run = async (label: string, pick: (tenant: number, i: number) => string) => {
    const ttft: number[] = [];
    const byReplica = new Map<string, number>();
    const before = {cached: await cached(), prompt: await prompts()};
    const started = performance.now();
    await Promise.all(
      Array.from({length: 8}, async (_, tenant) => {
        for (let i = 0; i < TENANT_REQUESTS; i++) {
          const t0 = performance.now();
          const res = await fetch(`${pick(tenant, i)}/v1/chat/completions`, {
            method: "POST",
            headers: {"content-type": "application/json", authorization: `Bearer tenant-${tenant}`},
            body: JSON.stringify({
              model: "m",
              messages: [{role: "system", content: systemPrompt(`${label} tenant ${tenant}`)}, {role: "user", content: `${USERS[(tenant + i) % USERS.length]} (${i})`}],
              max_tokens: 8,
              temperature: 0,
              stream: true
            })
          });
          const replica = res.headers.get(REPLICA_HEADER) ?? "direct";
          byReplica.set(replica, (byReplica.get(replica) ?? 0) + 1);
          const {firstAt} = await readSse(res, /"content":"[^"]/);
          if (firstAt !== undefined) ttft.push(firstAt - t0);
        }
      })
    );
    const seconds = (performance.now() - started) / 1000;
    const after = {cached: await cached(), prompt: await prompts()};
    return {
      strategy: label,
      "req/s": round((8 * TENANT_REQUESTS) / seconds, 2),
      "TTFT p50 ms": round(percentile(ttft, 50), 0),
      "TTFT p99 ms": round(percentile(ttft, 99), 0),
      "prompt tokens reused": `${round((100 * (after.cached - before.cached)) / Math.max(1, after.prompt - before.prompt), 0)}%`
    };
  };
  try {
    let next = 0;
    const rr = await run("round-robin (per request, no router)", () => urls[next++ % urls.length]!);
    strategyRows.push(rr);
    for (const strategy of ["LeastLoad", "PrefixHash"]) {
      const router = await startRouter(urls, strategy, `0-${LAST_CORE}`);
      try {
        strategyRows.push(await run(strategy, () => router.url));
      } finally {
        await stop(router.child);
      }
    }
    const base = Number(rr["TTFT p50 ms"]);
    for (const row of strategyRows) row["TTFT p50 vs round-robin"] = round(Number(row["TTFT p50 ms"]) / base, 2);
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
  }
}
printTable(`Strategies: 4 replicas (synthetic 20M, 4 slots each), 8 tenants with own ~1,000-token system prompts, ${TENANT_REQUESTS} streaming requests each`, strategyRows);

// ---- 3. Wake -----------------------------------------------------------------------------

const wakeRows: Array<Record<string, string | number>> = [];
if (PARTS.has("wake")) {
  const {startStack} = await import("../dev/stack.js");
  const stack = await startStack({dir: resolve(REPO_ROOT, ".paddock/bench-router"), log: () => {}});
  try {
    const spec = {
      model: {uri: "file:///models/stories260K.gguf", hostPath: true, name: "m"},
      replicas: {min: 0, max: 1},
      autoscaling: {enabled: true, intervalSeconds: 5, scaleDownDelaySeconds: 10},
      cache: {enabled: false},
      routing: {replicas: 1}
    };
    await stack.kube.apply({apiVersion: "llm.paddock.dev/v1alpha1", kind: "LlmService", metadata: {name: "wake", namespace: "default"}, spec}, "bench");
    const url = await stack.serviceUrl("default", "wake");
    // A router must answer through the Service (it holds the request; its /healthz is its
    // own, not a replica's); the model pods may be anywhere.
    while (!(await fetch(`${url}/healthz`).catch(() => undefined))?.ok) await sleep(250);
    type Svc = {status?: {conditions?: Array<{type: string; reason: string}>}};
    type Pod = {metadata: {creationTimestamp: string}; status?: {conditions?: Array<{type: string; status: string; lastTransitionTime: string}>}};
    for (let round_ = 0; round_ < 3; round_++) {
      for (;;) {
        const svc = await stack.kube.get<Svc>("/apis/llm.paddock.dev/v1alpha1/namespaces/default/llmservices/wake");
        const pods = await stack.kube.list<Pod>("/api/v1/namespaces/default/pods", "llm.paddock.dev/service=wake");
        if (svc?.status?.conditions?.some((c) => c.type === "Ready" && c.reason === "ScaledToZero") && pods.items.length === 0) break;
        await sleep(500);
      }
      const t0 = performance.now();
      let scaledAt: number | undefined;
      const watch = (async () => {
        while (scaledAt === undefined) {
          // A failed read is retried: this loop runs unawaited beside the request.
          const d = await stack.kube.get<{spec?: {replicas?: number}}>("/apis/apps/v1/namespaces/default/deployments/wake").catch(() => undefined);
          if ((d?.spec?.replicas ?? 0) > 0) scaledAt = performance.now();
          else await sleep(50);
        }
      })();
      const res = await fetch(`${url}/v1/chat/completions`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: "m", messages: [{role: "user", content: "Once upon a time"}], max_tokens: 8, stream: true})}).catch((e: unknown) => {
        throw new Error(`wake request to ${url} failed: ${String(e)} ${String((e as {cause?: unknown}).cause)}`);
      });
      const {firstAt} = await readSse(res, /"content":"[^"]/);
      await watch;
      const pod = (await stack.kube.list<Pod>("/api/v1/namespaces/default/pods", "llm.paddock.dev/service=wake")).items[0];
      const readyAt = pod?.status?.conditions?.find((c) => c.type === "Ready" && c.status === "True")?.lastTransitionTime;
      wakeRows.push({
        round: round_ + 1,
        "request -> replicas 1 ms": round(scaledAt! - t0, 0),
        "request -> first token ms": round((firstAt ?? NaN) - t0, 0),
        "pod created -> Ready s (1 s resolution)": pod && readyAt ? round((Date.parse(readyAt) - Date.parse(pod.metadata.creationTimestamp)) / 1000, 0) : "-"
      });
    }
  } finally {
    await stack.stop();
  }
  printTable("Wake from zero on the local stack (tiny model; operator, router and model pods as processes)", wakeRows);
}

console.log(`\nwrote ${writeResults("router", {settings: {CONCURRENCY, PER_CLIENT, ROUNDS, TRIVIAL_SECONDS, TENANT_REQUESTS}, overheadRows, strategyRows, wakeRows})}`);
process.exit(0);
