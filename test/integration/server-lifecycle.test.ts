import {mkdtempSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {TINY_MODEL, TINY_MODEL_NAME} from "../../dev/paths.js";
import {runToExit, ServerProcess, sleep} from "../../dev/processes/server.js";
import {parseMetrics, sample} from "../../dev/metrics-text.js";

/** Waits until the server's metrics show `n` busy slots: a request is generating. */
async function busySlots(server: ServerProcess, n: number): Promise<void> {
  for (let i = 0; i < 2_000; i++) {
    if (sample(parseMetrics(await server.metrics()), "llm_busy_slots") === n) return;
    await sleep(5);
  }
  throw new Error(`llm_busy_slots never reached ${n}`);
}

describe("server lifecycle", () => {
  it("on SIGTERM stops taking work (new connections refused), finishes the running stream, and exits 0", async () => {
    const server = await ServerProcess.start({PARALLEL_SLOTS: "2", SHUTDOWN_GRACE_SECONDS: "30"});
    const res = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({model: TINY_MODEL_NAME, prompt: "Once upon a time", max_tokens: 1200, temperature: 0, stream: true})
    });
    const reader = res.body!.getReader();
    await reader.read();

    server.child.kill("SIGTERM");
    await server.waitForLog((l) => l.msg === "draining");
    // The listener closes as draining starts: probes and new clients are refused at once
    // (connections already open get 503 until they fall idle and are closed).
    const refused = (url: string, init?: RequestInit) => fetch(url, init).then(
      (r) => `answered ${r.status}`,
      (e: Error & {cause?: {code?: string}}) => e.cause?.code
    );
    expect(await refused(`${server.url}/readyz`)).toBe("ECONNREFUSED");
    expect(await refused(`${server.url}/v1/completions`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: TINY_MODEL_NAME, prompt: "x", max_tokens: 2})})).toBe("ECONNREFUSED");

    let text = "";
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(text).toContain('"finish_reason":"length"');
    expect(await server.exited()).toEqual({code: 0, signal: null});
    expect(server.logs.map((l) => l.msg)).toContain("shutdown complete");
  });

  it("cuts requests still running at the grace deadline and still exits 0", async () => {
    const server = await ServerProcess.start({SHUTDOWN_GRACE_SECONDS: "0.2"});
    const pending = fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({model: TINY_MODEL_NAME, prompt: "Once", max_tokens: 1900})
    }).then(
      (r) => `answered ${r.status}`,
      (e: Error) => e.message
    );
    await busySlots(server, 1);
    server.child.kill("SIGTERM");
    expect(await server.exited()).toEqual({code: 0, signal: null});
    expect(await pending).toBe("fetch failed");
  });

  it("answers /healthz while the model loads and reports loading on /readyz until it is ready", async () => {
    // The port opens before the model loads (~0.5 s here): poll from the first moment it is open.
    const server = await ServerProcess.start({}, {waitReady: false});
    const seen: Array<{ready: number; body: unknown; health: number}> = [];
    for (;;) {
      const [ready, health] = await Promise.all([fetch(`${server.url}/readyz`), fetch(`${server.url}/healthz`)]);
      seen.push({ready: ready.status, body: await ready.json(), health: health.status});
      if (ready.status === 200) break;
    }
    expect(seen[0]).toEqual({ready: 503, body: {status: "loading"}, health: 200});
    expect(seen.every((s) => s.health === 200)).toBe(true);
    expect(seen.at(-1)!.ready).toBe(200);
    // Readiness flips once, when the server logs that it is ready.
    expect(seen.findIndex((s) => s.ready === 200)).toBe(seen.length - 1);
    expect(server.logs.some((l) => l.msg === "ready")).toBe(true);
    await server.stop();
  });

  it("logs prompts only when LOG_PROMPTS=true", async () => {
    const server = await ServerProcess.start({LOG_PROMPTS: "true"});
    await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({model: TINY_MODEL_NAME, prompt: "a traceable prompt", max_tokens: 2})
    });
    expect(await server.waitForLog((l) => l.msg === "request")).toMatchObject({prompt: "a traceable prompt"});
    await server.stop();
  });

  it.each([
    [{PARALLEL_SLOTS: "0"}, "PARALLEL_SLOTS"],
    [{GPU: "tpu"}, "GPU"],
    [{MODEL_PATH: ""}, "MODEL_PATH"]
  ])("refuses to start on %j with a message naming the variable", async (env, variable) => {
    const {code, stderr} = await runToExit({MODEL_PATH: "/nonexistent.gguf", ...env});
    expect(code).toBe(2);
    expect(stderr).toContain(`invalid configuration: ${variable}`);
  });

  it.each([
    ["a missing file", "/nonexistent/keys", /API_KEYS_FILE: cannot read \/nonexistent\/keys/],
    ["a file with no key", "EMPTY", /API_KEYS_FILE: .* holds no keys/]
  ])("refuses to start with API_KEYS_FILE naming %s: exit 2, the variable named, no stack trace", async (_what, file, message) => {
    const path = file === "EMPTY" ? `${mkdtempSync(join(tmpdir(), "keys-"))}/keys` : file;
    if (file === "EMPTY") writeFileSync(path, "# rotated out\n\n");
    const {code, stderr} = await runToExit({MODEL_PATH: "/nonexistent.gguf", API_KEYS_FILE: path});
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it("refuses to serve from the CPU when GPU_REQUIRED is set and no GPU is usable (this machine has none)", async () => {
    const {code, stderr} = await runToExit({MODEL_PATH: TINY_MODEL, GPU_REQUIRED: "true", PORT: "0", HOST: "127.0.0.1", THREADS: "1"});
    expect(code).toBe(3);
    expect(stderr).toMatch(/GPU_REQUIRED: no GPU backend could be loaded .*spec\.resources\.gpus: 0/);
  });

  it("exits non-zero with the reason when the model file cannot be loaded", async () => {
    const {code, stderr} = await runToExit({MODEL_PATH: "/nonexistent/model.gguf", PORT: "0", HOST: "127.0.0.1"});
    expect(code).toBe(1);
    expect(stderr).toMatch(/nonexistent\/model\.gguf/);
  });
});
