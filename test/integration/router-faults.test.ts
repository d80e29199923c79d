import {jest} from "@jest/globals";
import {createLogger} from "../../contract/log.js";
import {ServerProcess, sleep} from "../../dev/processes/server.js";
import {loadRouterConfig} from "../../router/src/config.js";
import {startRouter, type RunningRouter} from "../../router/src/main.js";

/**
 * Faults a user meets in ordinary use, on the real router in front of real inference
 * servers (the tiny model): a client that gives up, a replica that restarts under the same
 * pod name, a held stream whose client leaves, and a burst that wakes a service at zero.
 * Each failed on the router before its fix (issue #26, items 1-4).
 */
const chat = (url: string, body: Record<string, unknown> = {}, signal?: AbortSignal) =>
  fetch(`${url}/v1/chat/completions`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: "tiny", messages: [{role: "user", content: "Tell me a story"}], max_tokens: 4, ...body}), signal: signal ?? null});

/** Bans the end-of-sequence token (id 2 in the tiny model): generation runs to max_tokens. */
const NO_EOS = {logit_bias: {"2": -100}, temperature: 1};

describe("router faults under real use", () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const server = async (env: Record<string, string> = {}) => {
    const s = await ServerProcess.start({MODEL_NAME: "tiny", CACHE_MODE: "off", ...env});
    cleanups.push(() => s.stop());
    return s;
  };
  const router = async (urls: string[], env: Record<string, string> = {}): Promise<RunningRouter> => {
    const r = await startRouter(loadRouterConfig({MODEL_NAME: "tiny", HOST: "127.0.0.1", PORT: "0", ROUTER_STATIC_ENDPOINTS: urls.join(","), ROUTER_SERVICE: "tiny", ...env}), createLogger("error"));
    cleanups.push(() => r.stop());
    return r;
  };

  it("a client that gives up does not sideline the replica it was on (no ejection: the next requests use both)", async () => {
    const [a, b] = [await server(), await server()];
    const r = await router([a.url, b.url]);
    // A long generation, abandoned mid-way (a client timeout, a stop button).
    const abandon = new AbortController();
    const gone = chat(r.url, {...NO_EOS, max_tokens: 2000}, abandon.signal).catch(() => undefined);
    await sleep(300);
    abandon.abort();
    await gone;
    const served = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const res = await chat(r.url, {temperature: 1});
      expect(res.status).toBe(200);
      await res.text();
      served.add(res.headers.get("x-paddock-replica")!);
    }
    expect(served.size).toBe(2);
    expect(r.pool.ejected).toEqual([]);
    expect(await (await fetch(`${r.url}/metrics`)).text()).toMatch(/llm_router_ejections_total\{llmservice="tiny"\} 0/);
  });

  it("a held request goes to the replica that comes back under the same name (a restarted container)", async () => {
    const first = await server();
    const port = new URL(first.url).port;
    const r = await router([first.url], {ROUTER_HOLD_TIMEOUT_SECONDS: "30"});
    const replicas = r.pool.replicas;
    await first.stop();
    const started = Date.now();
    const held = chat(r.url);
    // Refused, ejected, then held: the only replica has been tried.
    for (let i = 0; i < 100 && r.pool.held === 0; i++) await sleep(20);
    expect(r.pool.held).toBe(1);
    // The container restarts on the same address; its EndpointSlice goes not-ready, then ready.
    r.pool.update([]);
    await server({PORT: port});
    r.pool.update(replicas);
    const res = await held;
    expect(res.status).toBe(200);
    expect(res.headers.get("x-paddock-replica")).toBe(replicas[0]!.name);
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 60_000);

  it("a held stream whose client leaves stops its heartbeat", async () => {
    const s = await server();
    const r = await router([s.url]);
    r.pool.update([]);
    // Watch the router's own intervals rather than count the process's timers: sockets,
    // agents and the pool keep timers of their own, and their number moves on its own.
    const started = jest.spyOn(globalThis, "setInterval");
    const cleared = jest.spyOn(globalThis, "clearInterval");
    try {
      const leave = new AbortController();
      const res = await chat(r.url, {stream: true}, leave.signal);
      const reader = res.body!.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toMatch(/^: waiting for a ready replica/);
      // The heartbeat is the interval at the router's default 5 s period.
      const heartbeats = started.mock.calls.flatMap(([, ms], i) => (ms === 5_000 ? [Number(started.mock.results[i]!.value)] : []));
      expect(heartbeats).toHaveLength(1);
      leave.abort();
      for (let i = 0; i < 50 && r.pool.held > 0; i++) await sleep(20);
      expect(r.pool.held).toBe(0);
      expect(cleared.mock.calls.map(([handle]) => Number(handle))).toContain(heartbeats[0]);
    } finally {
      started.mockRestore();
      cleared.mockRestore();
    }
  });

  it("a burst held at zero replicas is served by the replica that wakes, at its pace, without 429s", async () => {
    // 2 slots and a queue of 2: 4 requests fit at once; the rest wait in the router for room.
    const s = await server({PARALLEL_SLOTS: "2", MAX_QUEUE: "2"});
    const r = await router([s.url], {ROUTER_HOLD_TIMEOUT_SECONDS: "60"});
    const replicas = r.pool.replicas;
    r.pool.update([]);
    const burst = Array.from({length: 16}, () => chat(r.url, {max_tokens: 8, temperature: 1}));
    for (let i = 0; i < 100 && r.pool.held < 16; i++) await sleep(20);
    expect(r.pool.held).toBe(16);
    r.pool.update(replicas);
    const statuses = await Promise.all(burst.map(async (p) => (await p).status));
    expect(statuses).toEqual(Array.from({length: 16}, () => 200));
    expect(r.pool.held).toBe(0);
  }, 60_000);
});
