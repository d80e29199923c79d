import {TINY_MODEL_NAME} from "../../dev/paths.js";
import {runToExit, ServerProcess, sleep} from "../../dev/processes/server.js";

describe("server lifecycle", () => {
  it("on SIGTERM turns unready, refuses new work with 503, finishes the running stream, and exits 0", async () => {
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
    const ready = await fetch(`${server.url}/readyz`, {headers: {connection: "close"}}).catch(() => undefined);
    // The listener may already be closed to new connections; either way no new work is taken.
    if (ready) expect(ready.status).toBe(503);
    const late = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({model: TINY_MODEL_NAME, prompt: "x", max_tokens: 2})
    }).catch(() => undefined);
    if (late) expect(late.status).toBe(503);

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
    await sleep(200);
    server.child.kill("SIGTERM");
    expect(await server.exited()).toEqual({code: 0, signal: null});
    expect(await pending).toBe("fetch failed");
  });

  it("answers /healthz while the model loads and reports loading on /readyz", async () => {
    // Loading takes ~0.5 s; poll from the first moment the port is open.
    const server = await ServerProcess.start({}, {waitReady: false});
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    const first = await fetch(`${server.url}/readyz`);
    expect([200, 503]).toContain(first.status);
    if (first.status === 503) expect(await first.json()).toEqual({status: "loading"});
    await server.waitReady();
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

  it("exits non-zero with the reason when the model file cannot be loaded", async () => {
    const {code, stderr} = await runToExit({MODEL_PATH: "/nonexistent/model.gguf", PORT: "0", HOST: "127.0.0.1"});
    expect(code).toBe(1);
    expect(stderr).toMatch(/nonexistent\/model\.gguf/);
  });
});
