/**
 * Operator speed against the real control plane with KWOK nodes, in one run:
 *  1. latency: 50 LlmServices applied one at a time, apply -> Deployment created and
 *     apply -> Ready=True (p50/p99), beside a baseline of 50 plain Deployments with the same
 *     pod template applied directly (apply -> pods Ready: the control plane's own floor);
 *  2. scale: 500 LlmServices on 100 fake GPU nodes: time to all Ready, operator RSS (peak),
 *     and API requests the operator made.
 *
 *   npm run bench:operator        (BENCH_SERVICES=500, BENCH_NODES=100)
 */
import {KubeConfig, Watch} from "@kubernetes/client-node";
import {readFileSync} from "node:fs";
import {resolve} from "node:path";
import {parse} from "yaml";
import {clusterDown, clusterUp, kubectl} from "../dev/cluster/cluster.js";
import {ensureBinaries} from "../dev/cluster/locate.js";
import {OperatorProcess} from "../dev/processes/operator.js";
import {REPO_ROOT} from "../dev/paths.js";
import {freePort} from "../dev/processes/ports.js";
import {KubeClient} from "../operator/src/kube/kube-client.js";
import {desiredDeployment} from "../operator/src/desired/deployment.js";
import {parseLlmService} from "../operator/src/api/llmservice.js";
import {printTable, writeResults} from "./lib/report.js";
import {percentile, round} from "./lib/stats.js";

const SERVICES = Number(process.env["BENCH_SERVICES"] ?? 500);
const NODES = Number(process.env["BENCH_NODES"] ?? 100);
const LATENCY_N = 50;
const NAMESPACES = 10;
// Per-pod downloads: this measures reconciles on KWOK nodes (no pod runs, no model host is
// reachable), not the shared model cache's claims and Jobs.
const exampleDoc = parse(readFileSync(resolve(REPO_ROOT, "examples/llmservice.yaml"), "utf8")) as {spec: {model: Record<string, unknown>}};
const example = {spec: {...exampleDoc.spec, model: {...exampleDoc.spec.model, cache: {mode: "None"}}}} as {spec: Record<string, unknown>};

type Obj = {metadata: {name: string; namespace: string}; status?: {readyReplicas?: number; conditions?: Array<{type: string; status: string}>}};

/** Watches a collection and resolves per-object promises when a predicate first holds. */
class Waiter {
  readonly #pending = new Map<string, Array<{test: (o: Obj) => boolean; resolve: (t: number) => void}>>();
  readonly #seen = new Map<string, Obj>();
  #abort: {abort(): void} | undefined;
  #stopped = false;

  /** Watches `path`; when the watch ends (API server timeout, error) it starts again. */
  async watch(kc: KubeConfig, path: string): Promise<void> {
    this.#abort = await new Watch(kc).watch(
      path,
      {},
      (_type, o: Obj) => {
        const key = `${o.metadata.namespace}/${o.metadata.name}`;
        this.#seen.set(key, o);
        const waiting = this.#pending.get(key) ?? [];
        this.#pending.set(key, waiting.filter((w) => (w.test(o) ? (w.resolve(performance.now()), false) : true)));
      },
      (error: unknown) => {
        if (this.#stopped) return;
        if (error) console.error(`watch ${path} ended: ${String(error)}; restarting`);
        setTimeout(() => void this.watch(kc, path), 200);
      }
    );
  }

  until(key: string, test: (o: Obj) => boolean): Promise<number> {
    const seen = this.#seen.get(key);
    if (seen && test(seen)) return Promise.resolve(performance.now());
    return new Promise((resolve) => this.#pending.set(key, [...(this.#pending.get(key) ?? []), {test, resolve}]));
  }

  stop(): void {
    this.#stopped = true;
    this.#abort?.abort();
  }
}

const isReady = (o: Obj) => o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
const stats = (xs: number[]) => ({p50_ms: round(percentile(xs, 50), 1), p99_ms: round(percentile(xs, 99), 1)});

const binDir = ensureBinaries();
const dir = resolve(REPO_ROOT, ".paddock/bench-cluster");
const state = await clusterUp({dir, binDir, nodes: {gpuNodes: NODES, gpusPerNode: 8, cpuNodes: 0}, log: (m) => console.log(`cluster: ${m}`)});
const kc = new KubeConfig();
kc.loadFromFile(state.kubeconfig);
const kube = new KubeClient(kc);
const results: Record<string, unknown> = {};
let operator: OperatorProcess | undefined;
try {
  kubectl(binDir, state.kubeconfig, ["apply", "-f", resolve(REPO_ROOT, "crds/llmservices.yaml")]);
  for (const ns of ["bench-baseline", "bench-latency", ...Array.from({length: NAMESPACES}, (_, i) => `bench-${i}`)]) kubectl(binDir, state.kubeconfig, ["create", "namespace", ns]);
  await new Promise((r) => setTimeout(r, 1_000));

  const deployments = new Waiter();
  const services = new Waiter();
  await deployments.watch(kc, "/apis/apps/v1/deployments");
  await services.watch(kc, "/apis/llm.paddock.dev/v1alpha1/llmservices");

  // Baseline: the same Deployment the operator would make, applied directly.
  const baseline: number[] = [];
  for (let i = 0; i < LATENCY_N; i++) {
    const svc = parseLlmService({metadata: {name: `plain-${i}`, namespace: "bench-baseline", uid: "00000000-0000-0000-0000-000000000000"}, spec: example.spec});
    const d = desiredDeployment(svc, {image: "paddock/inference:bench"}) as {metadata: {ownerReferences?: unknown}};
    delete d.metadata.ownerReferences;
    const t0 = performance.now();
    await kube.apply(d as never, "bench");
    baseline.push((await deployments.until(`bench-baseline/plain-${i}`, (o) => (o.status?.readyReplicas ?? 0) >= 1)) - t0);
  }

  const healthPort = await freePort();
  operator = OperatorProcess.start(state.kubeconfig, ["--leader-elect=false", `--health-port=${healthPort}`, "--concurrency=8"]);
  await operator.waitFor("leading: starting controllers");
  const toDeployment: number[] = [];
  const toReady: number[] = [];
  for (let i = 0; i < LATENCY_N; i++) {
    const t0 = performance.now();
    await kube.apply({apiVersion: "llm.paddock.dev/v1alpha1", kind: "LlmService", metadata: {name: `svc-${i}`, namespace: "bench-latency"}, spec: example.spec} as never, "bench");
    const key = `bench-latency/svc-${i}`;
    const [created, ready] = await Promise.all([deployments.until(key, () => true), services.until(key, isReady)]);
    toDeployment.push(created - t0);
    toReady.push(ready - t0);
  }
  results["latency"] = {
    baselineDeploymentToReady: stats(baseline),
    applyToDeployment: stats(toDeployment),
    applyToReady: stats(toReady)
  };
  printTable(`Latency over ${LATENCY_N} services applied one at a time (ms)`, [
    {measure: "baseline: plain Deployment -> pods Ready", ...stats(baseline)},
    {measure: "LlmService apply -> Deployment created", ...stats(toDeployment)},
    {measure: "LlmService apply -> Ready=True", ...stats(toReady)}
  ]);

  // Scale: SERVICES services across NAMESPACES namespaces, created 16 at a time.
  const requestsBefore = await apiRequests(healthPort);
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({length: 16}, async () => {
      while (next < SERVICES) {
        const i = next++;
        await kube.apply({apiVersion: "llm.paddock.dev/v1alpha1", kind: "LlmService", metadata: {name: `s-${i}`, namespace: `bench-${i % NAMESPACES}`}, spec: example.spec} as never, "bench");
      }
    })
  );
  const created = performance.now() - t0;
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssBytes(operator!.child.pid!))), 200);
  await Promise.all(Array.from({length: SERVICES}, (_, i) => services.until(`bench-${i % NAMESPACES}/s-${i}`, isReady)));
  const converged = performance.now() - t0;
  clearInterval(sampler);
  const hwm = vmHwmBytes(operator.child.pid!);
  const requests = (await apiRequests(healthPort)) - requestsBefore;
  results["scale"] = {services: SERVICES, nodes: NODES, createSeconds: round(created / 1000, 1), convergedSeconds: round(converged / 1000, 1), operatorPeakRssMiB: round(Math.max(peakRss, hwm) / 2 ** 20, 1), apiRequests: requests, apiRequestsPerService: round(requests / SERVICES, 1)};
  printTable(`Scale: ${SERVICES} LlmServices on ${NODES} fake GPU nodes`, [results["scale"] as Record<string, number>]);
  deployments.stop();
  services.stop();
  console.log("\nGoals: apply->Deployment p99 < 1000 ms; 500 services converged < 120 s with operator RSS < 250 MB");
  console.log(`wrote ${writeResults("operator", results)}`);
} finally {
  await operator?.stop();
  kube.close();
  await clusterDown(dir);
}

async function apiRequests(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text.split("\n").filter((l) => l.startsWith("paddock_kube_api_requests_total{")).reduce((a, l) => a + Number(l.split(" ").at(-1)), 0);
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

function vmHwmBytes(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}
