import {spawn, spawnSync, type ChildProcess} from "node:child_process";
import {readdirSync, readFileSync} from "node:fs";
import {Agent, request as httpRequest} from "node:http";
import {connect} from "node:net";
import {join, resolve} from "node:path";
import {createInterface} from "node:readline";
import OpenAI from "openai";
import {stringify} from "yaml";
import {ensureBinaries} from "../../dev/cluster/locate.js";
import {eventually} from "../helpers/cluster.js";
import {parseMetrics, sample} from "../../dev/metrics-text.js";
import {REPO_ROOT} from "../../dev/paths.js";
import {sleep} from "../../dev/processes/server.js";
import {TINY_MODEL} from "../../dev/paths.js";
import {ModelHost} from "../helpers/model-host.js";
import {createHash} from "node:crypto";

/**
 * The whole system as a user runs it: `npm run dev` (here its built entry, as a child
 * process), then kubectl and HTTP against what it prints. Everything is real: the control
 * plane, the operator process, inference processes on the tiny model, Redis and Prometheus.
 * Only the kubelet and container runtime are stood in for, by the local node in dev/runtime
 * (no container runtime here): it runs each pod's server as a local process.
 *
 * One ordered scenario, as a user's session is: each numbered step builds on what the
 * previous ones left (the running stack, the example, the `e2e` LlmService and its pods).
 * Starting the stack once is what keeps this file near a minute. A step after a failed one
 * fails at once, naming the step that broke the scenario, instead of failing confusingly.
 */
interface Pod {
  metadata: {name: string; deletionTimestamp?: string; labels: Record<string, string>};
  status: {podIP?: string; conditions?: Array<{type: string; status: string}>};
}

const DIR = resolve(REPO_ROOT, ".paddock/e2e");

/** Whether something accepts TCP connections at host:port. */
const listening = (address: string) =>
  new Promise<boolean>((done) => {
    const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
    const socket = connect({host, port}, () => {
      socket.destroy();
      done(true);
    });
    socket.on("error", () => done(false));
  });

describe("local stack (npm run dev), one ordered scenario", () => {
  let broken: string | undefined;
  let stepNumber = 0;
  const step = (name: string, fn: () => Promise<void>, timeoutMs?: number) => {
    const title = `step ${++stepNumber}: ${name}`;
    it(
      title,
      async () => {
        if (broken) throw new Error(`not run: "${broken}" failed, and this step needs the state it leaves`);
        try {
          await fn();
        } catch (error) {
          broken = title;
          throw error;
        }
      },
      timeoutMs
    );
  };
  let dev: ChildProcess;
  let exited: Promise<number | null>;
  const lines: string[] = [];
  let binDir: string;
  let kubeconfig: string;
  let serviceUrl: string;
  let redisUrl: string;
  const seenPods = new Map<string, string>();
  /** Plays the Hugging Face hub for hf:// models (the operator's --hf-endpoint). */
  const host = new ModelHost();
  const model = readFileSync(TINY_MODEL);
  const modelSha = createHash("sha256").update(model).digest("hex");

  const line = async (prefix: string, timeoutMs: number) =>
    eventually(() => lines.find((l) => l.startsWith(prefix))?.slice(prefix.length), timeoutMs, `a line starting '${prefix}'\n${lines.join("\n")}`);
  const kubectl = (args: string[], input?: string) => {
    const r = spawnSync(join(binDir, "kubectl"), args, {input, encoding: "utf8", env: {...process.env, KUBECONFIG: kubeconfig}});
    if (r.status !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const pods = (service: string) =>
    (JSON.parse(kubectl(["get", "pods", "-l", `llm.paddock.dev/service=${service}`, "-o", "json"])) as {items: Pod[]}).items.map((p) => {
      if (p.status.podIP) seenPods.set(p.metadata.name, p.status.podIP);
      return p;
    });
  const live = (service: string) => pods(service).filter((p) => !p.metadata.deletionTimestamp);
  const ready = (p: Pod) => p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
  /** A pod's own /metrics, at the loopback address the local runtime gives it. */
  const podMetrics = async (p: Pod) => parseMetrics(await (await fetch(`http://${p.status.podIP!.replace(/^10\./, "127.")}:8000/metrics`)).text());
  const chat = (url: string, content: string, extra: Record<string, unknown> = {}) =>
    fetch(`${url}/v1/chat/completions`, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({model: "tiny", messages: [{role: "user", content}], max_tokens: 24, ...extra})});

  /** `n` clients sending uncacheable requests through the Service; counts what users would see. */
  const traffic = (url: string, n: number, maxTokens = 24) => {
    let on = true;
    const counts = {ok: 0, failed: 0, statuses: [] as number[]};
    const worker = async () => {
      while (on) {
        try {
          const res = await fetch(`${url}/v1/chat/completions`, {
            method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({model: "tiny", messages: [{role: "user", content: "Tell me a story"}], max_tokens: maxTokens, temperature: 1})
          });
          await res.text();
          if (res.ok) counts.ok++;
          else {
            counts.failed++;
            counts.statuses.push(res.status);
          }
        } catch {
          counts.failed++;
          counts.statuses.push(0);
        }
      }
    };
    const workers = Array.from({length: n}, worker);
    return {
      counts,
      stop: async () => {
        on = false;
        await Promise.all(workers);
        return counts;
      }
    };
  };

  beforeAll(async () => {
    binDir = ensureBinaries();
    await host.start();
    dev = spawn(process.execPath, [resolve(REPO_ROOT, "dist/dev/main.js"), `--hf-endpoint=${host.url}`], {env: {...process.env, PADDOCK_DEV_DIR: DIR}, stdio: ["ignore", "pipe", "pipe"]});
    exited = new Promise((r) => dev.once("exit", (code) => r(code)));
    createInterface({input: dev.stdout!}).on("line", (l) => lines.push(l));
    createInterface({input: dev.stderr!}).on("line", (l) => lines.push(`stderr: ${l}`));
    kubeconfig = await line("KUBECONFIG=", 600_000);
    redisUrl = await line("REDIS_URL=", 60_000);
    serviceUrl = await line("SERVICE_URL=", 240_000);
  }, 900_000);

  afterAll(async () => {
    await host.stop();
    if (dev && dev.exitCode === null) {
      dev.kill("SIGINT");
      await exited;
    }
  }, 60_000);

  step("prints a Service URL that answers through the openai client, and how long the example took", async () => {
    const took = lines.find((l) => /answered [\d.]+ s after apply/.test(l));
    expect(took).toBeDefined();
    process.stdout.write(`e2e: ${took}\n`);
    const client = new OpenAI({baseURL: `${serviceUrl}/v1`, apiKey: "unused"});
    const completion = await client.chat.completions.create({model: "tiny", messages: [{role: "user", content: "Once upon a time"}], max_tokens: 16});
    expect(completion.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(completion.usage!.completion_tokens).toBeGreaterThan(0);
  });

  step("serves a kubectl-applied LlmService, and a repeated greedy request is a cache HIT on the other replica", async () => {
    const applied = Date.now();
    const spec = {model: {uri: "file:///models/stories260K.gguf", hostPath: true, name: "tiny"}, replicas: {min: 2, max: 2}, engine: {shutdownGraceSeconds: 10}, cache: {redis: {url: redisUrl}}};
    kubectl(["apply", "-f", "-"], stringify({apiVersion: "llm.paddock.dev/v1alpha1", kind: "LlmService", metadata: {name: "e2e"}, spec}));
    const url = await line("dev: service default/e2e -> ", 60_000);
    await eventually(async () => (await chat(url, "ping")).ok, 120_000, "e2e answering");
    process.stdout.write(`e2e: kubectl apply -> first completion through the Service: ${Date.now() - applied} ms\n`);
    await eventually(() => live("e2e").filter(ready).length === 2, 60_000, "2 ready replicas");
    // The proxy reads EndpointSlices every 500 ms: let it see both endpoints before taking turns.
    await eventually(() => kubectl(["get", "endpointslices", "-l", "kubernetes.io/service-name=e2e", "-o", "jsonpath={.items[*].endpoints[?(@.conditions.ready==true)].addresses[0]}"]).trim().split(/\s+/).length === 2, 30_000, "2 ready endpoints");
    await sleep(1_500);

    const counts = async () =>
      Promise.all(
        live("e2e").map(async (p) => {
          const m = await podMetrics(p);
          return {pod: p.metadata.name, generated: sample(m, 'llm_responses_total{source="generated"}'), cache: sample(m, 'llm_responses_total{source="cache"}')};
        })
      );
    const before = await counts();
    const prompt = `Tell me about the moon ${Date.now()}`;
    const first = await chat(url, prompt, {temperature: 0});
    const firstText = await first.text();
    expect(first.headers.get("x-cache")).toBe("MISS");
    const firstPod = first.headers.get("x-paddock-replica");
    expect(live("e2e").map((p) => p.metadata.name)).toContain(firstPod);
    // The router balances by load: ask again until the other replica answers (it names itself).
    let other: Response | undefined;
    for (let i = 0; i < 40 && !other; i++) {
      const res = await chat(url, prompt, {temperature: 0});
      if (res.headers.get("x-paddock-replica") !== firstPod) other = res;
      else {
        expect(res.headers.get("x-cache")).toBe("HIT");
        await res.text();
      }
    }
    expect(other).toBeDefined();
    expect(other!.headers.get("x-cache")).toBe("HIT");
    expect((JSON.parse(await other!.text()) as {choices: Array<{message: {content: string}}>}).choices[0]!.message.content).toBe(
      (JSON.parse(firstText) as {choices: Array<{message: {content: string}}>}).choices[0]!.message.content
    );
    const after = await counts();
    const delta = after.map((a) => {
      const b = before.find((x) => x.pod === a.pod)!;
      return {pod: a.pod, generated: a.generated - b.generated, cache: a.cache - b.cache};
    });
    // Generated once, on the first replica; every other answer came from the shared cache.
    expect(delta.find((d) => d.pod === firstPod)).toMatchObject({generated: 1});
    expect(delta.find((d) => d.pod !== firstPod)).toMatchObject({generated: 0});
    expect(delta.find((d) => d.pod !== firstPod)!.cache).toBeGreaterThanOrEqual(1);
  }, 240_000);

  /** The pod's server process, found by the loopback address the local runtime gave it (HOST). */
  const serverPid = (p: Pod): number => {
    const host = `HOST=${p.status.podIP!.replace(/^10\./, "127.")}`;
    for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
      try {
        const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
        if (env.includes(host) && env.some((e) => e.startsWith("MODEL_PATH="))) return Number(pid);
      } catch {
        // gone, or not ours
      }
    }
    throw new Error(`no process listens for pod ${p.metadata.name}`);
  };

  /** `n` keep-alive clients on ONE connection; which replica answered each request. */
  const oneConnection = async (url: string, n: number, requests: number) => {
    const agent = new Agent({keepAlive: true, maxSockets: 1});
    const byReplica = new Map<string, number>();
    let sent = 0;
    const one = () =>
      new Promise<void>((done, fail) => {
        const req = httpRequest(`${url}/v1/chat/completions`, {method: "POST", agent, headers: {"content-type": "application/json"}}, (res) => {
          const replica = String(res.headers["x-paddock-replica"] ?? res.headers["x-served-by"] ?? "unknown");
          byReplica.set(replica, (byReplica.get(replica) ?? 0) + 1);
          res.resume();
          res.on("end", done);
        });
        req.on("error", fail);
        req.end(JSON.stringify({model: "tiny", messages: [{role: "user", content: `Tell me a story ${Math.random()}`}], max_tokens: 8}));
      });
    await Promise.all(Array.from({length: n}, async () => {
      while (sent++ < requests) await one();
    }));
    agent.destroy();
    return byReplica;
  };

  step("one keep-alive connection at concurrency 8 reaches every one of 4 replicas through the router; without it, one replica serves all", async () => {
    const spec = {model: {uri: "file:///models/stories260K.gguf", hostPath: true, name: "tiny"}, replicas: {min: 4, max: 4}, engine: {shutdownGraceSeconds: 10}, cache: {enabled: false}, routing: {enabled: false, replicas: 1}};
    kubectl(["apply", "-f", "-"], stringify({apiVersion: "llm.paddock.dev/v1alpha1", kind: "LlmService", metadata: {name: "spread"}, spec}));
    const url = await line("dev: service default/spread -> ", 60_000);
    await eventually(() => live("spread").filter(ready).length === 4, 120_000, "4 ready replicas");
    await eventually(async () => (await chat(url, "ping")).ok, 60_000, "spread answering");
    // Without the router the Service balances connections, as kube-proxy does: one connection, one pod.
    const direct = await oneConnection(url, 8, 80);
    expect([...direct.values()]).toEqual([80]);

    kubectl(["patch", "llms", "spread", "--type=merge", "-p", JSON.stringify({spec: {routing: {enabled: true}}})]);
    // On a new connection: open ones stay with the pod they were balanced to, as with kube-proxy.
    const viaNewConnection = () =>
      new Promise<string | undefined>((done) => {
        const req = httpRequest(`${url}/v1/models`, {agent: false}, (res) => {
          res.resume();
          done(res.headers["x-paddock-replica"] as string | undefined);
        });
        req.on("error", () => done(undefined));
        req.end();
      });
    await eventually(async () => (await viaNewConnection()) !== undefined, 60_000, "the Service answering through the router");
    const routed = await oneConnection(url, 8, 200);
    process.stdout.write(`e2e: one connection, c=8, 4 replicas: ${JSON.stringify(Object.fromEntries(routed))}\n`);
    expect(routed.size).toBe(4);
    for (const count of routed.values()) expect(count / 200).toBeGreaterThanOrEqual(0.15);
    // A model this service does not serve: 404 from the router, OpenAI's shape.
    const wrong = await fetch(`${url}/v1/chat/completions`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: "gpt-4o", messages: [{role: "user", content: "hi"}]})});
    expect(wrong.status).toBe(404);
    expect(await wrong.json()).toMatchObject({error: {code: "model_not_found", type: "invalid_request_error"}});
  }, 300_000);

  step("kill -9 of one of 4 replicas under 16 concurrent clients fails no request", async () => {
    const url = await line("dev: service default/spread -> ", 1_000);
    const load = traffic(url, 16, 24);
    await sleep(2_000);
    const victim = live("spread").find(ready)!;
    process.kill(serverPid(victim), "SIGKILL");
    await sleep(6_000);
    const counts = await load.stop();
    process.stdout.write(`e2e: kill -9 under 16 clients: ${JSON.stringify(counts)}\n`);
    expect(counts.ok).toBeGreaterThan(50);
    expect(counts).toMatchObject({failed: 0});
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/llm_router_retries_total\{reason="(connect_error|reset)",llmservice="spread"\} [1-9]/);
    kubectl(["delete", "llms", "spread"]);
  }, 120_000);

  /** Runs `change` between 2 s of steady traffic before and after; returns what the clients saw. */
  const trafficAround = async (maxTokens: number, change: () => Promise<unknown>) => {
    const load = traffic(await line("dev: service default/e2e -> ", 1_000), 4, maxTokens);
    await sleep(2_000);
    await change();
    await sleep(2_000);
    return load.stop();
  };

  step("replaces the deleted pod of a 1-replica service while traffic keeps flowing, with no failed request (the router holds)", async () => {
    kubectl(["patch", "llms", "e2e", "--type=merge", "-p", JSON.stringify({spec: {replicas: {min: 1, max: 1}}})]);
    await eventually(() => live("e2e").length === 1 && pods("e2e").length === 1, 90_000, "one replica");
    const counts = await trafficAround(24, async () => {
      const victim = live("e2e")[0]!.metadata.name;
      kubectl(["delete", "pod", victim, "--wait=false"]);
      await eventually(() => pods("e2e").every((p) => p.metadata.name !== victim) && live("e2e").filter(ready).length === 1, 90_000, "replacement Ready and the old pod gone");
    });
    expect(counts.ok).toBeGreaterThan(20);
    expect(counts).toMatchObject({failed: 0});
  }, 180_000);

  step("rolls out a spec change of a 1-replica service without failing a request", async () => {
    const before = live("e2e").map((p) => p.metadata.name);
    const counts = await trafficAround(48, async () => {
      kubectl(["patch", "llms", "e2e", "--type=merge", "-p", JSON.stringify({spec: {engine: {parallelSlots: 2}}})]);
      await eventually(() => {
        const now = pods("e2e");
        return now.length === 1 && now.every((p) => !before.includes(p.metadata.name) && ready(p) && !p.metadata.deletionTimestamp);
      }, 180_000, "rollout to a new ready pod");
    });
    expect(counts.ok).toBeGreaterThan(20);
    expect(counts).toMatchObject({failed: 0});
  }, 240_000);

  step("raises replicas under sustained load through the autoscaler, and new pods receive traffic", async () => {
    // The example: min 2, max 4, 4 in-flight requests per replica, 5 s scrapes, 10 s evaluations.
    const initial = live("tiny").map((p) => p.metadata.name);
    expect(initial).toHaveLength(2);
    const load = traffic(serviceUrl, 20, 64);
    const started = Date.now();
    try {
      await eventually(() => Number(kubectl(["get", "deployment", "tiny", "-o", "jsonpath={.spec.replicas}"])) > 2, 90_000, "scale-up");
      const reacted = Date.now() - started;
      await eventually(() => live("tiny").filter(ready).length === 4, 120_000, "4 ready replicas");
      process.stdout.write(`e2e: autoscaler live: load step -> new replica count ${reacted} ms, -> 4 ready replicas ${Date.now() - started} ms\n`);
      await sleep(3_000);
      const added = live("tiny").filter((p) => !initial.includes(p.metadata.name));
      expect(added).toHaveLength(2);
      for (const p of added) expect(sample(await podMetrics(p), 'llm_requests_total{endpoint="chat",status="200"}')).toBeGreaterThan(0);
    } finally {
      await load.stop();
    }
    const decision = JSON.parse(kubectl(["get", "llms", "tiny", "-o", "jsonpath={.status.scalingDecisions[-1]}"])) as {replicas: number; reason: string};
    expect(decision.reason).toMatch(/^scaling up to \d: load [\d.]+ active requests \(Prometheus, \d\/\d pods\), target 4 per replica/);
  }, 300_000);

  step("scales to zero without load, wakes on the first request (held, not failed), bounds what it holds, and returns to zero", async () => {
    const spec = {
      model: {uri: "file:///models/stories260K.gguf", hostPath: true, name: "tiny"},
      replicas: {min: 0, max: 1},
      autoscaling: {enabled: true, intervalSeconds: 5, scaleDownDelaySeconds: 10},
      engine: {shutdownGraceSeconds: 5},
      cache: {enabled: false},
      routing: {replicas: 1, maxHeldRequests: 3}
    };
    kubectl(["apply", "-f", "-"], stringify({apiVersion: "llm.paddock.dev/v1alpha1", kind: "LlmService", metadata: {name: "zero"}, spec}));
    const url = await line("dev: service default/zero -> ", 60_000);
    const reason = () => kubectl(["get", "llms", "zero", "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].reason}']);
    await eventually(() => reason() === "ScaledToZero" && live("zero").length === 0, 120_000, "scaled to zero with nothing to do");
    const printed = kubectl(["get", "llms", "zero"]);
    expect(printed).toMatch(/zero\s+0\s+0\s+ScaledToZero/);
    // The proxy learns the routers' endpoints a moment after status says they are ready, as
    // kube-proxy does; a router's own /healthz answers through the Service without waking anything.
    await eventually(async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.ok === true, 30_000, "a router answering through the Service");

    // Four requests at zero: three are held (the bound), the fourth is told to come back.
    const sent = Date.now();
    const answers = Array.from({length: 4}, (_, i) => chat(url, `wake ${i}`).then(async (r) => ({status: r.status, retryAfter: r.headers.get("retry-after"), body: await r.text(), at: Date.now()})));
    await eventually(() => Number(kubectl(["get", "deployment", "zero", "-o", "jsonpath={.spec.replicas}"])) === 1, 10_000, "woken");
    const woke = Date.now() - sent;
    const results = await Promise.all(answers);
    const served = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 503);
    expect(served).toHaveLength(3);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.retryAfter).toBe("5");
    expect(JSON.parse(refused[0]!.body)).toMatchObject({error: {code: "too_many_held_requests"}});
    const firstToken = Math.min(...served.map((r) => r.at)) - sent;
    process.stdout.write(`e2e: scale from zero: first request -> replicas 1 in ${woke} ms, -> first answer in ${firstToken} ms\n`);
    expect(woke).toBeLessThan(2_500);

    // No load and nothing held: back to zero after the 10 s window.
    await eventually(() => reason() === "ScaledToZero" && Number(kubectl(["get", "deployment", "zero", "-o", "jsonpath={.spec.replicas}"])) === 0, 90_000, "back to zero");
    kubectl(["delete", "llms", "zero"]);
  }, 300_000);

  interface ModelStatusView {
    phase: string;
    progress?: string;
    bytes?: number;
    totalBytes?: number;
    claimName?: string;
    job?: string;
  }
  const modelStatus = (name: string) => (JSON.parse(kubectl(["get", "llms", name, "-o", "json"])) as {status?: {model?: ModelStatusView}}).status?.model;
  const conditionOf = (name: string, type: string) =>
    (JSON.parse(kubectl(["get", "llms", name, "-o", "json"])) as {status?: {conditions?: Array<{type: string; status: string; reason: string; message: string}>}}).status?.conditions?.find((c) => c.type === type);
  const applyService = (name: string, spec: Record<string, unknown>) => kubectl(["apply", "-f", "-"], stringify({apiVersion: "llm.paddock.dev/v1alpha1", kind: "LlmService", metadata: {name}, spec}));
  const cachedSpec = (uri: string, extra: Record<string, unknown> = {}) => ({
    model: {uri, name: "tiny", ...extra},
    replicas: {min: 1, max: 1},
    engine: {shutdownGraceSeconds: 5},
    cache: {enabled: false},
    routing: {replicas: 1}
  });

  step("downloads a 3-replica service's hf:// model once into a shared claim, resumes a transfer dropped at 50%, and shows progress in kubectl get llms", async () => {
    host.host("model.gguf", {body: model, rate: 150_000, firstGet: {after: 0.5, then: "drop"}, linkedSha256: modelSha});
    const applied = Date.now();
    applyService("cached", {...cachedSpec("hf://org/repo/model.gguf"), replicas: {min: 3, max: 3}});
    // Watch what a user watching `kubectl get llms` would see while it downloads.
    const phases = new Set<string>();
    const rows = new Set<string>();
    await eventually(() => {
      const m = modelStatus("cached");
      if (m) phases.add(m.phase);
      const row = kubectl(["get", "llms", "cached", "--no-headers"]).trim();
      rows.add(row.replace(/\s+/g, " "));
      return conditionOf("cached", "Ready")?.status === "True" && live("cached").filter(ready).length === 3;
    }, 180_000, "cached: 3 replicas ready");
    const took = Date.now() - applied;
    const served = host.bytesServed("model.gguf");
    const gets = host.gets("model.gguf");
    process.stdout.write(`e2e: shared model cache: ${gets.length} GETs, ${served} bytes served for a ${model.length}-byte model (${(served / model.length).toFixed(2)}x), 3 replicas ready ${took} ms after apply; phases seen ${[...phases].join(", ")}\n`);
    expect([...rows].some((r) => /Downloading \d+%/.test(r))).toBe(true);
    expect(phases).toContain("Downloading");
    expect(modelStatus("cached")).toMatchObject({phase: "Ready", progress: "Ready"});
    expect(conditionOf("cached", "ModelReady")).toMatchObject({status: "True", reason: "Downloaded"});
    // Once for three replicas, and the dropped half resumed (Range), not restarted.
    expect(gets).toHaveLength(2);
    expect(gets[1]!.range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(served).toBeGreaterThanOrEqual(model.length);
    expect(served).toBeLessThan(1.6 * model.length);
    const claim = modelStatus("cached")!.claimName!;
    for (const p of live("cached")) {
      const spec = (JSON.parse(kubectl(["get", "pod", p.metadata.name, "-o", "json"])) as {spec: {volumes: Array<{name: string; persistentVolumeClaim?: {claimName: string; readOnly?: boolean}}>; initContainers?: unknown[]}}).spec;
      expect(spec.volumes.find((v) => v.name === "model")?.persistentVolumeClaim).toEqual({claimName: claim, readOnly: true});
      expect(spec.initContainers).toBeUndefined();
    }
    const url = await line("dev: service default/cached -> ", 10_000);
    expect((await chat(url, "Once upon a time")).status).toBe(200);
  }, 240_000);

  step("a second service naming the same model shares the claim without a byte more, and the claim and Job go with the last of them", async () => {
    const before = host.bytesServed("model.gguf");
    applyService("cached-2", cachedSpec("hf://org/repo/model.gguf"));
    await eventually(() => conditionOf("cached-2", "Ready")?.status === "True", 120_000, "cached-2 Ready");
    expect(host.bytesServed("model.gguf")).toBe(before);
    const {claimName, job} = modelStatus("cached")!;
    expect(modelStatus("cached-2")).toMatchObject({claimName, job, phase: "Ready"});
    const owners = (kind: string, name: string) => (JSON.parse(kubectl(["get", kind, name, "-o", "json"])) as {metadata: {ownerReferences?: Array<{name: string}>}}).metadata.ownerReferences?.map((r) => r.name).sort();
    expect(owners("pvc", claimName!)).toEqual(["cached", "cached-2"]);
    expect(owners("job", job!)).toEqual(["cached", "cached-2"]);
    kubectl(["delete", "llms", "cached"]);
    await eventually(() => owners("pvc", claimName!)?.join() === "cached-2", 120_000, "one owner left");
    kubectl(["delete", "llms", "cached-2"]);
    const gone = (kind: string, name: string) => spawnSync(join(binDir, "kubectl"), ["get", kind, name], {encoding: "utf8", env: {...process.env, KUBECONFIG: kubeconfig}}).status !== 0;
    await eventually(() => gone("pvc", claimName!) && gone("job", job!), 120_000, "claim and Job garbage-collected");
  }, 300_000);

  step("a stalled transfer is detected within stallTimeoutSeconds and resumed", async () => {
    host.host("stall.gguf", {body: model, firstGet: {after: 0.3, then: "stall"}});
    applyService("stall", cachedSpec("hf://org/repo/stall.gguf", {stallTimeoutSeconds: 3}));
    await eventually(() => conditionOf("stall", "ModelReady")?.status === "True", 120_000, "stall: model ready");
    const gets = host.gets("stall.gguf");
    expect(gets).toHaveLength(2);
    const detected = gets[1]!.at - gets[0]!.lastByteAt;
    process.stdout.write(`e2e: stall: last byte -> resumed request in ${detected} ms (timeout 3 s, then a 1 s back-off)\n`);
    expect(detected).toBeGreaterThanOrEqual(3_000);
    expect(detected).toBeLessThan(3_000 + 1_000 + 2_000);
    expect(gets[1]!.range).toBe(`bytes=${Math.floor(model.length * 0.3)}-`);
    kubectl(["delete", "llms", "stall"]);
  }, 180_000);

  step("download failures say why in conditions, events and kubectl get llms, and fixing the spec retries", async () => {
    host.host("private.gguf", {body: model, token: "hf_s3cret"});
    // The operator asks the host for the length anonymously: a gated model needs cache.size.
    applyService("private", cachedSpec("hf://org/repo/private.gguf"));
    await eventually(() => conditionOf("private", "ModelReady")?.reason === "SizeUnknown", 60_000, "SizeUnknown");
    expect(conditionOf("private", "ModelReady")!.message).toMatch(/HTTP 401.*set spec\.model\.cache\.size/);
    const sized = cachedSpec("hf://org/repo/private.gguf");
    applyService("private", {...sized, model: {...sized.model, cache: {size: "16Mi"}}});
    await eventually(() => conditionOf("private", "ModelReady")?.reason === "Unauthorized", 120_000, "Unauthorized");
    expect(conditionOf("private", "ModelReady")!.message).toContain("a token is needed (spec.model.tokenSecretRef)");
    expect(conditionOf("private", "Degraded")).toMatchObject({status: "True", reason: "ModelDownloadFailed"});
    expect(conditionOf("private", "Ready")).toMatchObject({status: "False", reason: "ModelDownloadFailed"});
    expect(kubectl(["get", "llms", "private", "--no-headers"])).toContain("Failed: Unauthorized");
    expect(kubectl(["get", "events", "--field-selector", "involvedObject.name=private,reason=Unauthorized", "-o", "jsonpath={.items[*].type}"])).toContain("Warning");
    kubectl(["create", "secret", "generic", "hf-token", "--from-literal=token=hf_s3cret"]);
    applyService("private", {...sized, model: {...sized.model, cache: {size: "16Mi"}, tokenSecretRef: {name: "hf-token", key: "token"}}});
    await eventually(() => conditionOf("private", "Ready")?.status === "True", 120_000, "private Ready with the token");

    applyService("wrong", cachedSpec("hf://org/repo/model.gguf", {sha256: "0".repeat(64)}));
    await eventually(() => conditionOf("wrong", "ModelReady")?.reason === "DigestMismatch", 120_000, "DigestMismatch");
    expect(conditionOf("wrong", "ModelReady")!.message).toContain(`expected ${"0".repeat(64)}, got ${modelSha}`);
    kubectl(["delete", "llms", "private", "wrong"]);
  }, 300_000);

  step("deleting the LlmServices stops every process they started", async () => {
    for (const s of ["e2e", "tiny"]) pods(s);
    kubectl(["delete", "llms", "e2e", "tiny"]);
    await eventually(() => pods("e2e").length === 0 && pods("tiny").length === 0, 120_000, "pods gone");
    await eventually(() => kubectl(["get", "pods", "-l", "llm.paddock.dev/router", "-o", "name"]).trim() === "", 60_000, "router pods gone");
    const answering = await Promise.all(
      [...new Set(seenPods.values())].map((ip) =>
        fetch(`http://${ip.replace(/^10\./, "127.")}:8000/healthz`, {signal: AbortSignal.timeout(1000)}).then(
          () => ip,
          () => undefined
        )
      )
    );
    expect(seenPods.size).toBeGreaterThanOrEqual(8); // 2 example + 2 autoscaled + 2 e2e + 1 replacement + 2 rolled out
    expect(answering.filter(Boolean)).toEqual([]);
  }, 180_000);

  step("Ctrl-C stops everything it started", async () => {
    const prometheus = await line("PROMETHEUS_URL=", 1_000);
    dev.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(lines).toContain("dev: stopped");
    const server = /server: https:\/\/([^\s]+)/.exec(spawnSync(join(binDir, "kubectl"), ["config", "view", "--kubeconfig", kubeconfig], {encoding: "utf8"}).stdout)?.[1];
    expect(server).toBeDefined();
    for (const address of [new URL(prometheus).host, new URL(redisUrl).host, server!]) expect(await listening(address)).toBe(false);
  }, 60_000);
});
