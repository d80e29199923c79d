import {parseMetrics, sample} from "../../dev/metrics-text.js";
import {TINY_MODEL_NAME} from "../../dev/paths.js";
import {ServerProcess, sleep} from "../../dev/processes/server.js";

/**
 * Slot admission on the real server. A 1,500-token generation keeps a slot busy for
 * seconds on the tiny model, long enough to fill slots and queue deterministically.
 */
const LONG = {model: TINY_MODEL_NAME, prompt: "Once upon a time", max_tokens: 1500, temperature: 0};

function post(server: ServerProcess, body: unknown, signal?: AbortSignal) {
  return fetch(`${server.url}/v1/completions`, {
    method: "POST",
    headers: {"content-type": "application/json"},
    body: JSON.stringify(body),
    ...(signal ? {signal} : {})
  });
}

async function waitForGauge(server: ServerProcess, name: string, value: number, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (sample(parseMetrics(await server.metrics()), name) === value) return;
    if (Date.now() > deadline) throw new Error(`${name} did not reach ${value}`);
    await sleep(10);
  }
}

describe("slots and queue", () => {
  let server: ServerProcess;
  afterEach(() => server.stop());

  it("runs parallel slots batched together, queues one more, and answers 429 with Retry-After beyond that", async () => {
    server = await ServerProcess.start({PARALLEL_SLOTS: "2", MAX_QUEUE: "1", CACHE_MODE: "off"});
    const running = [post(server, LONG), post(server, LONG)];
    await waitForGauge(server, "llm_busy_slots", 2);
    const queued = post(server, {...LONG, max_tokens: 5});
    await waitForGauge(server, "llm_queue_depth", 1);

    const rejected = await post(server, {...LONG, max_tokens: 5});
    expect(rejected.status).toBe(429);
    expect(rejected.headers.get("retry-after")).toBe("1");
    expect(await rejected.json()).toEqual({
      error: {message: expect.stringMatching(/capacity/), type: "rate_limit_error", param: null, code: "queue_full"}
    });

    const answers = await Promise.all([...running, queued]);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as Array<{usage: {completion_tokens: number}}>;
    expect(bodies.map((b) => b.usage.completion_tokens)).toEqual([1500, 1500, 5]);

    const metrics = parseMetrics(await server.metrics());
    expect(sample(metrics, 'llm_rejected_requests_total{reason="queue_full"}')).toBe(1);
    expect(sample(metrics, 'llm_requests_total{endpoint="completions",status="429"}')).toBe(1);
    const queuedLog = await server.waitForLog((l) => l.msg === "request" && l["completion_tokens"] === 5);
    expect(queuedLog["queue_ms"]).toBeGreaterThan(0);
  });

  it.each([false, true])("frees the slot when a client disconnects (stream: %s)", async (stream) => {
    server = await ServerProcess.start({PARALLEL_SLOTS: "1", MAX_QUEUE: "0", CACHE_MODE: "off"});
    const controller = new AbortController();
    const res = post(server, {...LONG, max_tokens: 1900, stream}, controller.signal);
    await waitForGauge(server, "llm_busy_slots", 1);
    if (stream) {
      const reader = (await res).body!.getReader();
      await reader.read();
    }
    controller.abort();
    await res.then((r) => r.body?.cancel()).catch(() => undefined);

    // The generation stopped early (not 1,900 tokens later) and the slot is free again.
    const log = await server.waitForLog((l) => l.msg === "request" && l["status"] === 499);
    expect(log["stop_cause"]).toBe("aborted");
    expect(log["completion_tokens"]).toBeLessThan(1900);
    await waitForGauge(server, "llm_busy_slots", 0);
    const next = await post(server, {...LONG, max_tokens: 3});
    expect(next.status).toBe(200);
    expect(sample(parseMetrics(await server.metrics()), "llm_active_requests")).toBe(0);
  });

  it("ends a generation at REQUEST_TIMEOUT_SECONDS with finish_reason length", async () => {
    server = await ServerProcess.start({PARALLEL_SLOTS: "1", REQUEST_TIMEOUT_SECONDS: "0.3", CACHE_MODE: "off"});
    const res = await post(server, {...LONG, max_tokens: 1900});
    expect(res.status).toBe(200);
    const body = (await res.json()) as {choices: Array<{finish_reason: string}>; usage: {completion_tokens: number}};
    expect(body.choices[0]!.finish_reason).toBe("length");
    expect(body.usage.completion_tokens).toBeLessThan(1900);
    expect(await server.waitForLog((l) => l.msg === "request")).toMatchObject({stop_cause: "timeout"});
  });
});

describe("authentication", () => {
  let server: ServerProcess;
  afterAll(() => server.stop());

  it("requires a key from API_KEYS_FILE on the API but not on probes or metrics", async () => {
    const {mkdtempSync, writeFileSync} = await import("node:fs");
    const {join} = await import("node:path");
    const {tmpdir} = await import("node:os");
    const file = join(mkdtempSync(join(tmpdir(), "paddock-keys-")), "keys");
    writeFileSync(file, "sk-test-1\n");
    server = await ServerProcess.start({API_KEYS_FILE: file});

    const call = (auth?: string) =>
      fetch(`${server.url}/v1/completions`, {
        method: "POST",
        headers: {"content-type": "application/json", ...(auth ? {authorization: auth} : {})},
        body: JSON.stringify({model: TINY_MODEL_NAME, prompt: "Once", max_tokens: 2})
      });
    const missing = await call();
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as {error: {code: string}}).error.code).toBe("invalid_api_key");
    expect((await call("Bearer sk-wrong")).status).toBe(401);
    expect((await call("Bearer sk-test-1")).status).toBe(200);
    expect((await fetch(`${server.url}/v1/models`)).status).toBe(401);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${server.url}/metrics`)).status).toBe(200);
  });
});
