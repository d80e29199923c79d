import {spawn, spawnSync} from "node:child_process";
import {createWriteStream, mkdirSync, readFileSync, rmSync} from "node:fs";
import {join, resolve} from "node:path";
import {KubeConfig} from "@kubernetes/client-node";
import {parse} from "yaml";
import {KubeClient} from "../operator/src/kube/kube-client.js";
import {clusterDown, clusterUp, readState, runningComponents} from "./cluster/cluster.js";
import {ensureBinaries} from "./cluster/locate.js";
import {freePort} from "./processes/ports.js";
import {REPO_ROOT, TINY_MODEL} from "./paths.js";
import {RedisProcess} from "./processes/redis.js";
import {stopChild} from "./processes/child.js";
import {PrometheusProcess} from "./processes/prometheus.js";
import {LocalVolumeProvisioner, VOLUME_RESOURCES} from "./runtime/local-volumes.js";
import {NODE_RESOURCES, NodeAgent} from "./runtime/node-agent.js";
import {ServiceProxy} from "./service-proxy.js";

export interface StackOptions {
  /** State, logs and kubeconfig. Defaults to .paddock/dev in the checkout. */
  readonly dir?: string;
  /** Where hostPath `/models` points. Defaults to the folder of ../shared/models/stories260K.gguf. */
  readonly modelDir?: string;
  /** Fake GPUs on the local node. Defaults to 8. */
  readonly gpus?: number;
  /** Prometheus scrape interval (s). Defaults to 5. */
  readonly scrapeSeconds?: number;
  readonly log?: (line: string) => void;
  /** More operator flags (e.g. --hf-endpoint for a local model host). */
  readonly operatorArgs?: readonly string[];
}

export interface Stack {
  readonly kubeconfig: string;
  readonly kube: KubeClient;
  readonly prometheusUrl: string;
  readonly redisUrl: string;
  readonly agent: NodeAgent;
  readonly proxy: ServiceProxy;
  /** The local URL of a Service once the proxy serves it. */
  serviceUrl(namespace: string, name: string, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

/**
 * The whole system on one machine: the local control plane, a node whose pods really run
 * (NodeAgent), a proxy per Service, Redis, Prometheus scraping the pods, and the operator
 * as a process. What `npm run dev` and the end-to-end tests start.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const dir = options.dir ?? resolve(REPO_ROOT, ".paddock/dev");
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  mkdirSync(resolve(dir, "logs"), {recursive: true});
  const stops: Array<() => Promise<unknown> | unknown> = [];
  const stop = async () => {
    for (const s of stops.reverse()) await Promise.resolve(s()).catch(() => {});
  };
  try {
    const clusterDir = resolve(dir, "cluster");
    const previous = readState(clusterDir);
    // A cluster left by a stack that was killed: it is ours, so stop it and start clean.
    if (previous && runningComponents(previous).length > 0) await clusterDown(clusterDir);
    const binDir = ensureBinaries();
    log("dev: starting the control plane");
    const cluster = await clusterUp({dir: clusterDir, binDir, nodes: {gpuNodes: 0, gpusPerNode: 0, cpuNodes: 0}});
    stops.push(() => clusterDown(clusterDir));
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfig);
    const kube = new KubeClient(kc, {resources: {...NODE_RESOURCES, ...VOLUME_RESOURCES}});
    stops.push(() => kube.close());

    const kubectl = (args: string[]) => {
      const r = spawnSync(join(binDir, "kubectl"), args, {encoding: "utf8", env: {...process.env, KUBECONFIG: cluster.kubeconfig}});
      if (r.status !== 0) throw new Error(`kubectl ${args.join(" ")}: ${r.stderr}`);
    };
    kubectl(["apply", "-f", resolve(REPO_ROOT, "crds/llmservices.yaml")]);
    kubectl(["wait", "--for=condition=Established", "crd/llmservices.llm.paddock.dev", "--timeout=60s"]);

    const redis = await RedisProcess.start();
    stops.push(() => redis.stop());
    const prometheus = await PrometheusProcess.start(await freePort(), options.scrapeSeconds ?? 5);
    stops.push(() => prometheus.stop());

    // PersistentVolumeClaims (the shared model cache) get a folder each.
    // A fresh cluster: folders of an earlier one's volumes are nobody's now.
    rmSync(resolve(dir, "volumes"), {recursive: true, force: true});
    const volumes = new LocalVolumeProvisioner(kube, resolve(dir, "volumes"), (message, fields) => log(`volumes: ${message}${fields ? ` ${JSON.stringify(fields)}` : ""}`));
    await volumes.start();
    stops.push(() => volumes.stop());

    const modelDir = options.modelDir ?? resolve(TINY_MODEL, "..");
    const agent = new NodeAgent({
      kube,
      gpus: options.gpus ?? 8,
      appRoot: REPO_ROOT,
      workDir: resolve(dir, "pods"),
      apiServer: apiServerFor(kc),
      hostPath: (path) => (path === "/models" ? modelDir : path.startsWith("/models/") ? resolve(modelDir, path.slice("/models/".length)) : path),
      log: (message, fields) => log(`runtime: ${message}${fields ? ` ${JSON.stringify(fields)}` : ""}`),
      onPodsChanged: (pods) =>
        prometheus.setTargets(
          pods.filter((p) => p.annotations["prometheus.io/scrape"] === "true").map((p) => ({address: `${p.ip}:${p.annotations["prometheus.io/port"] ?? "8000"}`, namespace: p.namespace, pod: p.name}))
        )
    });
    await agent.start();
    stops.push(() => agent.stop());

    const proxy = new ServiceProxy(kube, (urls) => {
      for (const [key, url] of urls) log(`dev: service ${key} -> ${url}`);
    }, (message, fields) => log(`proxy: ${message} ${JSON.stringify(fields ?? {})}`));
    await proxy.start();
    stops.push(() => proxy.stop());

    const operatorLog = createWriteStream(resolve(dir, "logs/operator.log"));
    const operator = spawn(process.execPath, [resolve(REPO_ROOT, "dist/operator/src/main.js"), "--leader-elect=false", "--health-port=0", `--prometheus-url=${prometheus.url}`, ...(options.operatorArgs ?? [])], {
      env: {...process.env, KUBECONFIG: cluster.kubeconfig},
      stdio: ["ignore", "pipe", "pipe"]
    });
    operator.stdout!.pipe(operatorLog);
    operator.stderr!.pipe(operatorLog);
    stops.push(() => stopChild(operator));
    log(`dev: operator, Redis (${redis.url}), Prometheus (${prometheus.url}) and the local node are up; logs in ${dir}/logs and ${dir}/pods`);

    return {
      kubeconfig: cluster.kubeconfig,
      kube,
      prometheusUrl: prometheus.url,
      redisUrl: redis.url,
      agent,
      proxy,
      async serviceUrl(namespace, name, timeoutMs = 60_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const url = proxy.urls().get(`${namespace}/${name}`);
          if (url) return url;
          if (Date.now() > deadline) throw new Error(`service ${namespace}/${name} has no local URL after ${timeoutMs} ms`);
          await new Promise((r) => setTimeout(r, 200));
        }
      },
      stop
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The API server URL and CA of a kubeconfig, for pods' own kubeconfigs. */
export function apiServerFor(kc: KubeConfig): {server: string; caData: string} {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("the kubeconfig names no cluster");
  const caData = cluster.caData ?? (cluster.caFile ? readFileSync(cluster.caFile).toString("base64") : "");
  return {server: cluster.server, caData};
}

/** The example LlmService for the local stack, with its Redis URL pointed at the stack's Redis. */
export function localExample(redisUrl: string): {apiVersion: string; kind: string; metadata: {name: string; namespace?: string}; spec: {cache: {redis: {url: string}}}} {
  const doc = parse(readFileSync(resolve(REPO_ROOT, "examples/llmservice-local.yaml"), "utf8")) as ReturnType<typeof localExample>;
  doc.spec.cache.redis.url = redisUrl;
  return doc;
}
