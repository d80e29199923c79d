import {execFileSync} from "node:child_process";
import {existsSync, mkdirSync, readFileSync} from "node:fs";
import {createServer, type Server} from "node:https";
import type {AddressInfo} from "node:net";
import {join} from "node:path";
import type {KubeClient, ResourceTable} from "../../operator/src/kube/kube-client.js";
import {PodRunner, type Pod, type RunnerDeps} from "./pod-runner.js";

export interface NodeAgentOptions {
  readonly kube: KubeClient;
  /** Node name. Defaults to paddock-local. */
  readonly name?: string;
  /** Fake `nvidia.com/gpu` capacity, so GPU-limited pods schedule here. Defaults to 8. */
  readonly gpus?: number;
  readonly appRoot: string;
  readonly workDir: string;
  readonly hostPath: (path: string) => string;
  readonly log: RunnerDeps["log"];
  /** The API server as pods reach it (for service account kubeconfigs). */
  readonly apiServer?: RunnerDeps["apiServer"];
  /** Told whenever the set of running pods changes (for Prometheus' scrape targets). */
  readonly onPodsChanged?: (pods: ReadonlyArray<{namespace: string; name: string; ip: string; annotations: Record<string, string>}>) => void;
}

/** Kinds the local node writes beyond the operator's: give them to its KubeClient. */
export const NODE_RESOURCES: ResourceTable = {"v1/Node": {group: "api/v1", resource: "nodes", namespaced: false}};

/** Loopback addresses handed to pods: 127.42.0.2, 127.42.0.3, ... (all of 127/8 is local on Linux). */
function* addresses(): Generator<string> {
  for (let b = 0; b < 256; b++) for (let c = b === 0 ? 2 : 0; c < 255; c++) yield `127.42.${b}.${c}`;
}

/**
 * A node of the local cluster whose pods really run: it registers the Node (with fake GPU
 * capacity), keeps its heartbeat Lease fresh, and runs every pod the scheduler binds to it
 * through a PodRunner, each on its own loopback address. Development and tests only.
 */
export class NodeAgent {
  readonly name: string;
  readonly #runners = new Map<string, PodRunner>();
  readonly #free: string[] = [];
  readonly #ips = addresses();
  #timers: NodeJS.Timeout[] = [];
  #syncing = false;
  #lastTargets = "";
  #kubelet: Server | undefined;

  constructor(private readonly options: NodeAgentOptions) {
    this.name = options.name ?? "paddock-local";
    mkdirSync(options.workDir, {recursive: true});
  }

  async start(): Promise<void> {
    const {kube} = this.options;
    const gpus = String(this.options.gpus ?? 8);
    const capacity = {cpu: "16", memory: "64Gi", pods: "110", "nvidia.com/gpu": gpus};
    const node = {
      apiVersion: "v1",
      kind: "Node",
      metadata: {name: this.name, labels: {"kubernetes.io/hostname": this.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "paddock.dev/local-runtime": "true", "nvidia.com/gpu.present": "true"}},
      spec: {}
    };
    await kube.apply(node, "paddock-dev-runtime");
    const port = await this.#serveLogs();
    await this.#heartbeat(capacity, port);
    this.#timers.push(setInterval(() => void this.#heartbeat(capacity, port).catch((e: unknown) => this.options.log("node heartbeat failed", {error: String(e)})), 10_000));
    this.#timers.push(setInterval(() => void this.#sync(), 500));
    await this.#sync();
  }

  /** Stops every pod's processes (SIGTERM, then SIGKILL after 5 s). */
  async stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    await Promise.all([...this.#runners.values()].map((r) => r.kill()));
    this.#runners.clear();
    this.#kubelet?.closeAllConnections();
    this.#kubelet?.close();
  }

  /**
   * The one kubelet API the local node serves: container logs, which the API server fetches
   * for `kubectl logs` and `pods/log` readers (the operator reads download progress that
   * way). HTTPS with a self-signed certificate: the API server does not verify kubelets
   * unless told to (--kubelet-certificate-authority).
   */
  async #serveLogs(): Promise<number> {
    const key = join(this.options.workDir, "kubelet.key");
    const cert = join(this.options.workDir, "kubelet.crt");
    if (!existsSync(cert)) {
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-subj", `/CN=${this.name}`, "-days", "3650", "-addext", "subjectAltName=IP:127.0.0.1"], {stdio: "ignore"});
    }
    this.#kubelet = createServer({key: readFileSync(key), cert: readFileSync(cert)}, (req, res) => {
      const url = new URL(req.url ?? "/", "https://node");
      const m = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
      const runner = m ? [...this.#runners.values()].find((r) => r.key === `${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`) : undefined;
      const file = runner && join(runner.logDir, `${decodeURIComponent(m![3]!)}.log`);
      if (!file || !existsSync(file)) {
        res.writeHead(404, {"content-type": "text/plain"}).end("not found\n");
        return;
      }
      let text = readFileSync(file, "utf8");
      const tail = Number(url.searchParams.get("tailLines") ?? NaN);
      if (Number.isInteger(tail) && tail >= 0) text = text.split("\n").slice(-(tail + 1)).join("\n");
      res.writeHead(200, {"content-type": "text/plain"}).end(text);
    });
    await new Promise<void>((r) => this.#kubelet!.listen(0, "127.0.0.1", r));
    return (this.#kubelet.address() as AddressInfo).port;
  }

  /** Pods running here now, by namespace/name. */
  pods(): Array<{key: string; ip: string; logDir: string}> {
    return [...this.#runners.values()].map((r) => ({key: r.key, ip: r.listenIP, logDir: r.logDir}));
  }

  async #heartbeat(capacity: Record<string, string>, kubeletPort: number): Promise<void> {
    const {kube} = this.options;
    const now = new Date().toISOString();
    const ready = {type: "Ready", status: "True", reason: "KubeletReady", message: "paddock local runtime is posting ready status", lastHeartbeatTime: now, lastTransitionTime: now};
    await kube.request("PATCH", `/api/v1/nodes/${this.name}/status`, {status: {capacity, allocatable: capacity, conditions: [ready], addresses: [{type: "InternalIP", address: "127.0.0.1"}], daemonEndpoints: {kubeletEndpoint: {Port: kubeletPort}}}}, "application/merge-patch+json");
    const lease = {apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: {name: this.name, namespace: "kube-node-lease"}, spec: {holderIdentity: this.name, leaseDurationSeconds: 40, renewTime: now.replace("Z", "000Z")}};
    await kube.apply(lease, "paddock-dev-runtime");
  }

  async #sync(): Promise<void> {
    if (this.#syncing) return;
    this.#syncing = true;
    try {
      const list = await this.options.kube.list<Pod & {metadata: {annotations?: Record<string, string>}}>(`/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${this.name}`)}`);
      const seen = new Set<string>();
      for (const pod of list.items) {
        seen.add(pod.metadata.uid);
        let runner = this.#runners.get(pod.metadata.uid);
        if (!runner) {
          if (pod.metadata.deletionTimestamp) {
            // Deleted before it ever ran: nothing to stop, just let it go.
            await this.options.kube.request("DELETE", `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`, {gracePeriodSeconds: 0}).catch(() => {});
            continue;
          }
          runner = new PodRunner(pod, this.#allocate(), {kube: this.options.kube, nodeIP: "127.0.0.1", appRoot: this.options.appRoot, workDir: this.options.workDir, hostPath: this.options.hostPath, log: this.options.log, ...(this.options.apiServer ? {apiServer: this.options.apiServer} : {})});
          this.#runners.set(pod.metadata.uid, runner);
          void runner.start();
        } else if (pod.metadata.deletionTimestamp) {
          if (pod.metadata.deletionGracePeriodSeconds !== undefined) runner.pod.metadata.deletionGracePeriodSeconds = pod.metadata.deletionGracePeriodSeconds;
          const r = runner;
          void r.terminate().finally(() => this.#release(pod.metadata.uid, r));
        }
      }
      for (const [uid, runner] of this.#runners) if (!seen.has(uid)) void runner.kill().finally(() => this.#release(uid, runner));
      this.#publish(list.items);
    } catch (e) {
      this.options.log("pod sync failed", {error: String(e)});
    } finally {
      this.#syncing = false;
    }
  }

  #allocate(): string {
    const ip = this.#free.shift() ?? this.#ips.next().value;
    if (!ip) throw new Error("out of loopback addresses");
    return ip;
  }

  #release(uid: string, runner: PodRunner): void {
    if (this.#runners.get(uid) !== runner) return;
    this.#runners.delete(uid);
    this.#free.push(runner.listenIP);
  }

  #publish(pods: ReadonlyArray<Pod & {metadata: {annotations?: Record<string, string>}}>): void {
    const running = pods.flatMap((p) => {
      const r = this.#runners.get(p.metadata.uid);
      return r && !p.metadata.deletionTimestamp ? [{namespace: p.metadata.namespace, name: p.metadata.name, ip: r.listenIP, annotations: p.metadata.annotations ?? {}}] : [];
    });
    const text = JSON.stringify(running);
    if (text === this.#lastTargets) return;
    this.#lastTargets = text;
    this.options.onPodsChanged?.(running);
  }
}
