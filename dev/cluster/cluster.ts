import {spawn, spawnSync} from "node:child_process";
import {closeSync, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync} from "node:fs";
import {request} from "node:https";
import {join} from "node:path";
import {stringify} from "yaml";
import {freePort} from "../processes/ports.js";
import {AUDIT_POLICY, auditLogPath} from "./audit.js";
import {KWOK_NODE_ANNOTATION, nodeManifests, type NodePlan} from "./nodes.js";
import {createPki, type CertFiles, type Pki} from "./pki.js";

/** Components in start order; they are stopped in reverse. */
const COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"] as const;
type Component = (typeof COMPONENTS)[number];

export interface ClusterState {
  readonly dir: string;
  readonly binDir: string;
  readonly kubeconfig: string;
  readonly server: string;
  readonly pids: Partial<Record<Component, number>>;
  readonly startedAt: string;
}

export interface UpOptions {
  /** Where certificates, data, logs and the state file live. */
  readonly dir: string;
  /** Folder with the built binaries (dev/cluster/build.sh). */
  readonly binDir: string;
  readonly nodes: NodePlan;
  /**
   * An address of this machine the API server also serves on and advertises (the
   * `kubernetes` Service's endpoint), for a real node whose pods must reach it: they cannot
   * reach the host's 127.0.0.1. Default: loopback only.
   */
  readonly advertiseAddress?: string;
  readonly log?: (message: string) => void;
}

export {auditLogPath} from "./audit.js";

export class ClusterError extends Error {
  override name = "ClusterError";
}

const statePath = (dir: string) => join(dir, "state.json");

export function readState(dir: string): ClusterState | undefined {
  try {
    return JSON.parse(readFileSync(statePath(dir), "utf8")) as ClusterState;
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is alive and is the binary we started (a recycled PID belongs to someone
 * else, so processes are identified by saved PID *and* executable, never by name).
 */
export function isOurProcess(pid: number, binary: string): boolean {
  try {
    const exe = readlinkSync(`/proc/${pid}/exe`);
    // A rebuild prunes old binaries; processes started from them still run.
    return exe === binary || exe === `${binary} (deleted)`;
  } catch {
    return false;
  }
}

export function runningComponents(state: ClusterState): Component[] {
  return COMPONENTS.filter((c) => {
    const pid = state.pids[c];
    return pid !== undefined && isOurProcess(pid, join(state.binDir, c));
  });
}

/**
 * Starts etcd, kube-apiserver (RBAC, service-account tokens, default admission),
 * kube-controller-manager, kube-scheduler and KWOK on 127.0.0.1 with locally made
 * certificates, registers the fake nodes and waits until they are Ready.
 */
export async function clusterUp(options: UpOptions): Promise<ClusterState> {
  const {dir, binDir} = options;
  const log = options.log ?? (() => {});
  const previous = readState(dir);
  if (previous && runningComponents(previous).length > 0) {
    throw new ClusterError(
      `a cluster is already running from ${dir} (pids ${Object.values(previous.pids).join(", ")}); ` +
        `use it (export KUBECONFIG=${previous.kubeconfig}) or stop it first with 'npm run cluster:down'`
    );
  }
  for (const c of COMPONENTS) {
    if (!existsSync(join(binDir, c))) throw new ClusterError(`missing ${join(binDir, c)}: run dev/cluster/build.sh`);
  }
  rmSync(dir, {recursive: true, force: true});
  mkdirSync(join(dir, "logs"), {recursive: true});

  const started = Date.now();
  const pki = createPki(join(dir, "pki"), options.advertiseAddress ? [`IP:${options.advertiseAddress}`] : []);
  const ports = {etcd: await freePort(), etcdPeer: await freePort(), apiserver: await freePort(), cm: await freePort(), scheduler: await freePort(), kwok: await freePort()};
  const server = `https://127.0.0.1:${ports.apiserver}`;
  const kubeconfigs = {
    admin: writeKubeconfig(dir, "admin", server, pki.ca.cert, pki.admin),
    controllerManager: writeKubeconfig(dir, "controller-manager", server, pki.ca.cert, pki.controllerManager),
    scheduler: writeKubeconfig(dir, "scheduler", server, pki.ca.cert, pki.scheduler),
    kwok: writeKubeconfig(dir, "kwok", server, pki.ca.cert, pki.kwok)
  };
  const pids: Partial<Record<Component, number>> = {};
  const state = (): ClusterState => ({dir, binDir, kubeconfig: kubeconfigs.admin, server, pids: {...pids}, startedAt: new Date(started).toISOString()});
  const start = (component: Component, args: string[]) => {
    pids[component] = launch(dir, join(binDir, component), component, args);
    writeFileSync(statePath(dir), JSON.stringify(state(), null, 2));
  };

  try {
    start("etcd", etcdArgs(dir, ports.etcd, ports.etcdPeer));
    await waitFor("etcd", dir, pids, () => httpOk(`http://127.0.0.1:${ports.etcd}/health`));
    start("kube-apiserver", apiserverArgs(dir, pki, ports, options.advertiseAddress));
    await waitFor("kube-apiserver", dir, pids, () => apiOk(server, pki, "/readyz"));
    log(`api server ready (${Date.now() - started} ms)`);
    start("kube-controller-manager", controllerManagerArgs(pki, kubeconfigs.controllerManager, ports.cm));
    start("kube-scheduler", componentArgs(kubeconfigs.scheduler, ports.scheduler));
    start("kwok", kwokArgs(kubeconfigs.kwok, ports.kwok, join(binDir, "kwok-stages.yaml")));
    // Pods cannot be admitted before the service-account controller made `default`.
    await waitFor("kube-controller-manager", dir, pids, () => apiOk(server, pki, "/api/v1/namespaces/default/serviceaccounts/default"));

    const nodes = nodeManifests(options.nodes);
    if (nodes.length > 0) kubectl(binDir, kubeconfigs.admin, ["apply", "-f", "-"], stringify({apiVersion: "v1", kind: "List", items: nodes}));
    const want = options.nodes.gpuNodes + options.nodes.cpuNodes;
    await waitFor("kwok", dir, pids, () => readyNodes(binDir, kubeconfigs.admin) >= want, 60_000);
    log(`${want} fake nodes Ready (${Date.now() - started} ms)`);
    return state();
  } catch (error) {
    await clusterDown(dir);
    throw error;
  }
}

/** Stops every component by its saved PID (SIGTERM, then SIGKILL after 5 s) and removes the state. */
export async function clusterDown(dir: string): Promise<boolean> {
  const state = readState(dir);
  if (!state) return false;
  for (const component of [...COMPONENTS].reverse()) {
    const pid = state.pids[component];
    if (pid === undefined || !isOurProcess(pid, join(state.binDir, component))) continue;
    process.kill(pid, "SIGTERM");
    const deadline = Date.now() + 5_000;
    while (isOurProcess(pid, join(state.binDir, component)) && Date.now() < deadline) await sleep(50);
    if (isOurProcess(pid, join(state.binDir, component))) process.kill(pid, "SIGKILL");
  }
  rmSync(statePath(dir), {force: true});
  rmSync(join(dir, "etcd"), {recursive: true, force: true});
  return true;
}

function launch(dir: string, binary: string, name: string, args: string[]): number {
  const out = openSync(join(dir, "logs", `${name}.log`), "a");
  // Detached: the processes outlive `cluster:up` and are stopped by `cluster:down`.
  const child = spawn(binary, args, {detached: true, stdio: ["ignore", out, out]});
  closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new ClusterError(`could not start ${binary}`);
  return child.pid;
}

function etcdArgs(dir: string, port: number, peerPort: number): string[] {
  return [
    "--name=paddock",
    `--data-dir=${join(dir, "etcd")}`,
    `--listen-client-urls=http://127.0.0.1:${port}`,
    `--advertise-client-urls=http://127.0.0.1:${port}`,
    `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
    `--initial-cluster=paddock=http://127.0.0.1:${peerPort}`,
    // A throwaway test cluster: durability is not worth an fsync per write.
    "--unsafe-no-fsync=true",
    "--log-level=warn"
  ];
}

function apiserverArgs(dir: string, pki: Pki, ports: {etcd: number; apiserver: number}, advertise: string | undefined): string[] {
  const policy = join(dir, "audit-policy.yaml");
  writeFileSync(policy, stringify(AUDIT_POLICY));
  return [
    `--audit-policy-file=${policy}`,
    `--audit-log-path=${auditLogPath(dir)}`,
    "--audit-log-format=json",
    "--audit-log-maxsize=100",
    "--audit-log-maxbackup=1",
    `--etcd-servers=http://127.0.0.1:${ports.etcd}`,
    `--bind-address=${advertise ? "0.0.0.0" : "127.0.0.1"}`,
    `--advertise-address=${advertise ?? "127.0.0.1"}`,
    `--secure-port=${ports.apiserver}`,
    `--kubelet-client-certificate=${pki.kubeletClient.cert}`,
    `--kubelet-client-key=${pki.kubeletClient.key}`,
    // A real node's name resolves nowhere here: reach kubelets by their InternalIP.
    "--kubelet-preferred-address-types=InternalIP,Hostname",
    `--cert-dir=${join(dir, "apiserver")}`,
    `--tls-cert-file=${pki.apiserver.cert}`,
    `--tls-private-key-file=${pki.apiserver.key}`,
    `--client-ca-file=${pki.ca.cert}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${pki.serviceAccount.public}`,
    `--service-account-signing-key-file=${pki.serviceAccount.private}`,
    "--authorization-mode=Node,RBAC",
    "--service-cluster-ip-range=10.96.0.0/16",
    "--allow-privileged=true",
    "--profiling=false"
  ];
}

/** Flags the controller-manager and the scheduler share: identity, serving port, one instance. */
function componentArgs(kubeconfig: string, port: number): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${port}`,
    "--leader-elect=false",
    "--profiling=false"
  ];
}

function controllerManagerArgs(pki: Pki, kubeconfig: string, port: number): string[] {
  return [
    ...componentArgs(kubeconfig, port),
    `--service-account-private-key-file=${pki.serviceAccount.private}`,
    `--root-ca-file=${pki.ca.cert}`,
    `--cluster-signing-cert-file=${pki.ca.cert}`,
    `--cluster-signing-key-file=${pki.ca.key}`,
    // Each controller acts as its own service account, so RBAC applies to them as in a real cluster.
    "--use-service-account-credentials=true"
  ];
}

function kwokArgs(kubeconfig: string, port: number, stages: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--config=${stages}`,
    "--manage-all-nodes=false",
    `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION.key}=${KWOK_NODE_ANNOTATION.value}`,
    // Heartbeats through node Leases (the stage profile expects them); without this nodes
    // go NotReady between KWOK's slow status updates and their pods lose readiness.
    "--node-lease-duration-seconds=40",
    "--cidr=10.244.0.0/16",
    "--node-ip=10.0.0.1",
    `--server-address=127.0.0.1:${port}`
  ];
}

export function writeKubeconfig(dir: string, name: string, server: string, caFile: string, client: CertFiles): string {
  const b64 = (path: string) => readFileSync(path).toString("base64");
  const path = join(dir, `${name}.kubeconfig`);
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{name: "paddock-local", cluster: {server, "certificate-authority-data": b64(caFile)}}],
    users: [{name, user: {"client-certificate-data": b64(client.cert), "client-key-data": b64(client.key)}}],
    contexts: [{name: `${name}@paddock-local`, context: {cluster: "paddock-local", user: name, namespace: "default"}}],
    "current-context": `${name}@paddock-local`
  };
  writeFileSync(path, stringify(config), {mode: 0o600});
  return path;
}

export function kubectl(binDir: string, kubeconfig: string, args: string[], input?: string): string {
  const result = spawnSync(join(binDir, "kubectl"), [`--kubeconfig=${kubeconfig}`, ...args], {input, encoding: "utf8"});
  if (result.status !== 0) throw new ClusterError(`kubectl ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

function readyNodes(binDir: string, kubeconfig: string): number {
  const list = JSON.parse(kubectl(binDir, kubeconfig, ["get", "nodes", "-o", "json"])) as {
    items: Array<{status?: {conditions?: Array<{type: string; status: string}>}}>;
  };
  return list.items.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length;
}

async function waitFor(component: Component, dir: string, pids: Partial<Record<Component, number>>, check: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    for (const [name, pid] of Object.entries(pids)) {
      if (pid !== undefined && !processAlive(pid)) throw new ClusterError(`${name} exited during start-up:\n${tail(join(dir, "logs", `${name}.log`))}`);
    }
    if (Date.now() > deadline) throw new ClusterError(`${component} not ready after ${timeoutMs} ms:\n${tail(join(dir, "logs", `${component}.log`))}`);
    await sleep(100);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.startsWith("Z");
  } catch {
    return false;
  }
}

function tail(path: string, lines = 15): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function httpOk(url: string): Promise<boolean> {
  const res = await fetch(url).catch(() => undefined);
  return res?.ok ?? false;
}

/** GET on the API server as the cluster admin (client certificate auth). */
function apiOk(server: string, pki: Pki, path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${server}${path}`, {ca: readFileSync(pki.ca.cert), cert: readFileSync(pki.admin.cert), key: readFileSync(pki.admin.key), timeout: 2_000}, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
