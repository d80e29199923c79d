/**
 * Cache-hit serving vs generation on the tiny model: requests/s and latency for memory
 * hits, Redis hits (a real local redis-server) and misses, at concurrency 1 and 32, in one run.
 *
 *   npm run bench:cache
 *
 * Prints a table and writes bench/results/cache.json.
 */
import {RedisProcess} from "../dev/processes/redis.js";
import {ServerProcess} from "../dev/processes/server.js";
import {TINY_MODEL_NAME} from "../dev/paths.js";
import {printTable, writeResults} from "./lib/report.js";
import {percentile, round} from "./lib/stats.js";

const MAX_TOKENS = 64;
const SERVER_ENV = {PARALLEL_SLOTS: "8", MAX_QUEUE: "64", THREADS: "1"};

interface Row {
  scenario: string;
  concurrency: number;
  requests: number;
  req_per_s: number;
  p50_ms: number;
  p99_ms: number;
}

const body = (prompt: string) => JSON.stringify({model: TINY_MODEL_NAME, messages: [{role: "user", content: prompt}], max_tokens: MAX_TOKENS, temperature: 0});

/** The HTTP floor of this machine and client: GET /healthz, which does no work at all. */
async function floor(url: string, count: number): Promise<Row> {
  const latencies: number[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await (await fetch(`${url}/healthz`)).arrayBuffer();
    latencies.push(performance.now() - t0);
  }
  const seconds = (performance.now() - started) / 1000;
  return {scenario: "floor: GET /healthz", concurrency: 1, requests: count, req_per_s: round(count / seconds), p50_ms: round(percentile(latencies, 50), 2), p99_ms: round(percentile(latencies, 99), 2)};
}

async function run(scenario: string, url: string, concurrency: number, perClient: number, prompt: (client: number, i: number) => string, expect: string): Promise<Row> {
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({length: concurrency}, async (_, client) => {
      for (let i = 0; i < perClient; i++) {
        const t0 = performance.now();
        const res = await fetch(`${url}/v1/chat/completions`, {method: "POST", headers: {"content-type": "application/json"}, body: body(prompt(client, i))});
        await res.arrayBuffer();
        latencies.push(performance.now() - t0);
        if (res.status !== 200 || res.headers.get("x-cache") !== expect) throw new Error(`${scenario}: got ${res.status} ${res.headers.get("x-cache")}, expected 200 ${expect}`);
      }
    })
  );
  const seconds = (performance.now() - started) / 1000;
  return {scenario, concurrency, requests: latencies.length, req_per_s: round(latencies.length / seconds), p50_ms: round(percentile(latencies, 50), 2), p99_ms: round(percentile(latencies, 99), 2)};
}

const redis = await RedisProcess.start();
const memoryServer = await ServerProcess.start(SERVER_ENV);
const redisServer = await ServerProcess.start({...SERVER_ENV, REDIS_URL: redis.url});
const rows: Row[] = [];
try {
  for (const s of [memoryServer, redisServer]) await s.waitForLog((l) => l.msg === "model digest computed; cache active");
  const hot = () => "Once upon a time";
  await floor(memoryServer.url, 100);
  rows.push(await floor(memoryServer.url, 300));
  for (const [name, server] of [["memory hit", memoryServer], ["redis hit", redisServer]] as const) {
    await run(`${name} (prime)`, server.url, 1, 1, hot, "MISS");
    await run(`${name} (warm-up)`, server.url, 8, 20, hot, "HIT");
    rows.push(await run(name, server.url, 1, 300, hot, "HIT"));
    rows.push(await run(name, server.url, 32, 40, hot, "HIT"));
  }
  // Misses: every prompt is new, so every request generates MAX_TOKENS tokens.
  let n = 0;
  const fresh = () => `A story number ${n++} about`;
  await run("miss (warm-up)", memoryServer.url, 8, 2, fresh, "MISS");
  rows.push(await run("miss (generate)", memoryServer.url, 1, 30, fresh, "MISS"));
  rows.push(await run("miss (generate)", memoryServer.url, 32, 3, fresh, "MISS"));
} finally {
  await Promise.all([memoryServer.stop(), redisServer.stop()]);
  await redis.stop();
}

printTable(`Chat completions, tiny model, max_tokens ${MAX_TOKENS}, 8 slots, non-streaming`, rows as unknown as Array<Record<string, string | number>>);
const at = (scenario: string, c: number) => rows.find((r) => r.scenario === scenario && r.concurrency === c)!;
const goals = {
  redisHitP99MsC1: at("redis hit", 1).p99_ms,
  memoryHitP99MsC1: at("memory hit", 1).p99_ms,
  memoryHitVsMissThroughputC32: round(at("memory hit", 32).req_per_s / at("miss (generate)", 32).req_per_s, 1),
  redisHitVsMissThroughputC32: round(at("redis hit", 32).req_per_s / at("miss (generate)", 32).req_per_s, 1)
};
printTable("Goals (redis hit p99 < 5 ms, memory hit p99 < 2 ms at c=1; hit throughput >= 20x miss at c=32)", [goals]);
console.log(`\nwrote ${writeResults("cache", {rows, goals})}`);
