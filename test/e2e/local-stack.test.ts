import {spawn, spawnSync, type ChildProcess} from "node:child_process";
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
    dev = spawn(process.execPath, [resolve(REPO_ROOT, "dist/dev/main.js")], {env: {...process.env, PADDOCK_DEV_DIR: DIR}, stdio: ["ignore", "pipe", "pipe"]});
    exited = new Promise((r) => dev.once("exit", (code) => r(code)));
    createInterface({input: dev.stdout!}).on("line", (l) => lines.push(l));
    createInterface({input: dev.stderr!}).on("line", (l) => lines.push(`stderr: ${l}`));
    kubeconfig = await line("KUBECONFIG=", 600_000);
    redisUrl = await line("REDIS_URL=", 60_000);
    serviceUrl = await line("SERVICE_URL=", 240_000);
  }, 900_000);

  afterAll(async () => {
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
    // The proxy takes turns over the endpoints: the next request goes to the other pod.
    const second = await chat(url, prompt, {temperature: 0});
    expect(second.headers.get("x-cache")).toBe("HIT");
    expect((JSON.parse(await second.text()) as {choices: Array<{message: {content: string}}>}).choices[0]!.message.content).toBe(
      (JSON.parse(firstText) as {choices: Array<{message: {content: string}}>}).choices[0]!.message.content
    );
    const after = await counts();
    const delta = after.map((a) => {
      const b = before.find((x) => x.pod === a.pod)!;
      return {pod: a.pod, generated: a.generated - b.generated, cache: a.cache - b.cache};
    });
    const generatedOn = delta.find((d) => d.generated === 1 && d.cache === 0);
    const hitOn = delta.find((d) => d.cache === 1 && d.generated === 0);
    expect(generatedOn).toBeDefined();
    expect(hitOn).toBeDefined();
    expect(hitOn!.pod).not.toBe(generatedOn!.pod);
  }, 240_000);

  /** Runs `change` between 2 s of steady traffic before and after; returns what the clients saw. */
  const trafficAround = async (maxTokens: number, change: () => Promise<unknown>) => {
    const load = traffic(await line("dev: service default/e2e -> ", 1_000), 4, maxTokens);
    await sleep(2_000);
    await change();
    await sleep(2_000);
    return load.stop();
  };

  step("replaces a deleted pod while traffic keeps flowing, with no failed request", async () => {
    const counts = await trafficAround(24, async () => {
      const victim = live("e2e")[0]!.metadata.name;
      kubectl(["delete", "pod", victim, "--wait=false"]);
      await eventually(() => pods("e2e").every((p) => p.metadata.name !== victim) && live("e2e").filter(ready).length === 2, 90_000, "replacement Ready and the old pod gone");
    });
    expect(counts.ok).toBeGreaterThan(20);
    expect(counts).toMatchObject({failed: 0});
  }, 180_000);

  step("rolls out a spec change, draining old pods without failing in-flight requests", async () => {
    const before = live("e2e").map((p) => p.metadata.name);
    const counts = await trafficAround(48, async () => {
      kubectl(["patch", "llms", "e2e", "--type=merge", "-p", JSON.stringify({spec: {engine: {parallelSlots: 2}}})]);
      await eventually(() => {
        const now = pods("e2e");
        return now.length === 2 && now.every((p) => !before.includes(p.metadata.name) && ready(p) && !p.metadata.deletionTimestamp);
      }, 180_000, "rollout to 2 new ready pods");
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

  step("deleting the LlmServices stops every process they started", async () => {
    for (const s of ["e2e", "tiny"]) pods(s);
    kubectl(["delete", "llms", "e2e", "tiny"]);
    await eventually(() => pods("e2e").length === 0 && pods("tiny").length === 0, 120_000, "pods gone");
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
