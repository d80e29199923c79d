import {spawn, spawnSync, type ChildProcess} from "node:child_process";
import {closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync} from "node:fs";
import {networkInterfaces} from "node:os";
import {join} from "node:path";
import {stringify} from "yaml";
import {kubectl, writeKubeconfig, type ClusterState} from "../cluster/cluster.js";
import {signCertificate} from "../cluster/pki.js";
import {sleep, stopChild} from "../processes/child.js";

/**
 * A real Kubernetes node on this machine: containerd (with its CRI plugin and runc), a
 * bridge CNI network, the upstream kubelet and kube-proxy (iptables mode), joined to a
 * local control plane. Pods run as real containers from images imported from buildah's
 * store; Services route through kube-proxy as in a cluster. Needs root. One at a time per
 * machine: the bridge, the kubelet's port and the iptables chains are the machine's.
 *
 * What this VM forced (each also in docs/local-stack.md):
 * - cgroup v1 only: kubelet 1.35 refuses it unless `failCgroupV1: false`;
 * - root without CAP_SYS_RESOURCE: a negative oom_score_adj (the pause container's -998,
 *   Guaranteed pods' -997) cannot be set, and runc fails the sandbox ("can't get final
 *   child's PID from pipe"); containerd's `restrict_oom_score_adj` clamps them to its own;
 * - no cluster DNS: pods resolve with the host's resolv.conf, and the API server reaches
 *   the kubelet by InternalIP (the node's name resolves nowhere).
 */

/** The pod sandbox image, built from Kubernetes' pause.c (no registry here). */
export const PAUSE_IMAGE = "localhost/paddock/pause:3.10";
/** The pod network (one node: one /24) and the Service range the control plane uses. */
export const POD_CIDR = "10.244.0.0/24";
const BRIDGE = "paddock0";
const CNI_NETWORK = "paddock";
const RUN_DIR = "/run/paddock-node";

export interface RealNodeOptions {
  readonly cluster: ClusterState;
  /** kubelet, kube-proxy and pause (dev/node/build.sh). */
  readonly binDir: string;
  /** Where the node keeps its state (containerd's images, the kubelet's pods). */
  readonly dir: string;
  /** This machine's address the pods and the API server reach it at (hostAddress()). */
  readonly address: string;
  readonly name?: string;
  /** Images in buildah's store to import into containerd, e.g. ghcr.io/paddock-llm/operator:0.1.0. */
  readonly images: readonly string[];
  readonly log?: (message: string) => void;
}

/** The first non-loopback IPv4 address of this machine. */
export function hostAddress(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    const v4 = addresses?.find((a) => a.family === "IPv4" && !a.internal);
    if (v4) return v4.address;
  }
  throw new Error("no non-loopback IPv4 address: a real node needs one its pods can reach");
}

export class RealNode {
  readonly #children: ChildProcess[] = [];

  private constructor(
    readonly name: string,
    private readonly options: RealNodeOptions
  ) {}

  /** Starts containerd, imports the images, starts the kubelet and kube-proxy, and waits until the node is Ready. */
  static async start(options: RealNodeOptions): Promise<RealNode> {
    if (process.getuid?.() !== 0) throw new Error("a real node needs root (containerd, the kubelet's mounts, iptables)");
    for (const tool of ["containerd", "ctr", "runc", "iptables", "buildah"]) {
      if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) throw new Error(`${tool} is missing: bash .ci/setup installs it`);
    }
    const node = new RealNode(options.name ?? "paddock-node", options);
    cleanUp(options.dir, options.binDir);
    try {
      await node.#start();
    } catch (error) {
      await node.stop();
      throw error;
    }
    return node;
  }

  /** The node's logs (containerd, kubelet, kube-proxy): beside its state, kept after stop() for a failed test to show. */
  get logDir(): string {
    return `${this.options.dir}-logs`;
  }

  async #start(): Promise<void> {
    const {dir, cluster, address, log = () => {}} = this.options;
    for (const sub of ["cni", "pki"]) mkdirSync(join(dir, sub), {recursive: true});
    rmSync(this.logDir, {recursive: true, force: true});
    mkdirSync(this.logDir, {recursive: true});
    writeFileSync("/proc/sys/net/ipv4/ip_forward", "1");
    const started = Date.now();
    const files = this.#configure();
    this.#spawn("containerd", "containerd", ["--config", files.containerd]);
    await waitFor("containerd", () => ctr(["version"]).status === 0, 20_000);
    this.#importImages();
    log(`containerd ready, ${this.options.images.length + 1} images imported (${Date.now() - started} ms)`);
    this.#spawn("kubelet", join(this.options.binDir, "kubelet"), [
      `--config=${files.kubelet}`,
      `--kubeconfig=${files.kubeletKubeconfig}`,
      `--hostname-override=${this.name}`,
      `--node-ip=${address}`,
      `--root-dir=${join(dir, "kubelet")}`
    ]);
    this.#spawn("kube-proxy", join(this.options.binDir, "kube-proxy"), [`--config=${files.kubeProxy}`]);
    await waitFor("the node to be Ready", () => nodeReady(cluster, this.name), 60_000);
    log(`node ${this.name} Ready (${Date.now() - started} ms)`);
  }

  /** Certificates, kubeconfigs and the configuration files of containerd, CNI, the kubelet and kube-proxy. */
  #configure(): {containerd: string; kubelet: string; kubeletKubeconfig: string; kubeProxy: string} {
    const {dir, cluster, address} = this.options;
    const pki = join(cluster.dir, "pki");
    const ca = join(pki, "ca.crt");
    const kubeletClient = signCertificate(pki, `kubelet-${this.name}`, `/O=system:nodes/CN=system:node:${this.name}`, "client");
    const serving = signCertificate(pki, `kubelet-serving-${this.name}`, `/CN=${this.name}`, "server", [`IP:${address}`, `DNS:${this.name}`]);
    const proxyClient = signCertificate(pki, "kube-proxy", "/CN=system:kube-proxy", "client");
    const kubeletKubeconfig = writeKubeconfig(dir, "kubelet", cluster.server, ca, kubeletClient);
    const proxyKubeconfig = writeKubeconfig(dir, "kube-proxy", cluster.server, ca, proxyClient);
    const write = (name: string, text: string) => {
      writeFileSync(join(dir, name), text);
      return join(dir, name);
    };
    write(join("cni", "10-paddock.conflist"), JSON.stringify(cniConfig(), null, 2));
    return {
      containerd: write("containerd.toml", containerdConfig(dir)),
      kubelet: write("kubelet.yaml", stringify(kubeletConfig(address, ca, serving))),
      kubeletKubeconfig,
      kubeProxy: write("kube-proxy.yaml", stringify(kubeProxyConfig(this.name, proxyKubeconfig)))
    };
  }

  /** buildah's images into containerd's k8s.io namespace, through OCI archives (and the pause image, built first if missing). */
  #importImages(): void {
    if (spawnSync("buildah", ["inspect", "--type", "image", PAUSE_IMAGE], {stdio: "ignore"}).status !== 0) {
      const ctrName = run("buildah", ["from", "scratch"]).trim();
      run("buildah", ["copy", "--quiet", ctrName, join(this.options.binDir, "pause"), "/pause"]);
      run("buildah", ["config", "--entrypoint", '["/pause"]', "--user", "65535:65535", ctrName]);
      run("buildah", ["commit", "--quiet", "--rm", ctrName, PAUSE_IMAGE]);
    }
    for (const image of [PAUSE_IMAGE, ...this.options.images]) {
      const archive = join(this.options.dir, "image.tar");
      rmSync(archive, {force: true});
      run("buildah", ["push", "--quiet", image, `oci-archive:${archive}:${image}`]);
      const imported = ctr(["-n", "k8s.io", "images", "import", archive]);
      if (imported.status !== 0) throw new Error(`importing ${image} into containerd failed: ${imported.stderr}`);
      rmSync(archive, {force: true});
    }
  }

  #spawn(name: string, binary: string, args: string[]): void {
    const out = openSync(join(this.logDir, `${name}.log`), "a");
    const child = spawn(binary, args, {stdio: ["ignore", out, out]});
    closeSync(out);
    this.#children.push(child);
  }

  /** Stops the node and removes what it left: containers, mounts, network namespaces, the bridge, iptables rules. */
  async stop(): Promise<void> {
    const byName = (n: string) => this.#children.find((c) => c.spawnfile.endsWith(n));
    for (const name of ["kube-proxy", "kubelet"]) {
      const child = byName(name);
      if (child) await stopChild(child, 5_000);
    }
    killContainers();
    const containerd = byName("containerd");
    if (containerd) await stopChild(containerd, 5_000);
    cleanUp(this.options.dir, this.options.binDir);
  }
}

function containerdConfig(dir: string): string {
  return `version = 2
root = "${join(dir, "containerd")}"
state = "${RUN_DIR}/containerd"
[grpc]
  address = "${RUN_DIR}/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  # No CAP_SYS_RESOURCE here: negative oom_score_adj values are clamped to containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${join(dir, "cni")}"
`;
}

/** One bridge, host-local addresses from the node's pod CIDR, masquerade to the outside. */
function cniConfig(): object {
  return {
    cniVersion: "1.0.0",
    name: CNI_NETWORK,
    plugins: [
      {type: "bridge", bridge: BRIDGE, isGateway: true, ipMasq: true, hairpinMode: true, ipam: {type: "host-local", ranges: [[{subnet: POD_CIDR}]], routes: [{dst: "0.0.0.0/0"}]}},
      {type: "portmap", capabilities: {portMappings: true}},
      {type: "loopback"}
    ]
  };
}

function kubeletConfig(address: string, ca: string, serving: {cert: string; key: string}): object {
  return {
    apiVersion: "kubelet.config.k8s.io/v1beta1",
    kind: "KubeletConfiguration",
    // cgroup v1 is all this VM mounts; kubelet 1.35 refuses it by default.
    failCgroupV1: false,
    cgroupDriver: "cgroupfs",
    containerRuntimeEndpoint: `unix://${RUN_DIR}/containerd.sock`,
    address,
    port: 10250,
    readOnlyPort: 0,
    tlsCertFile: serving.cert,
    tlsPrivateKeyFile: serving.key,
    // Only the API server (its kubelet-client certificate) and callers it authorizes get in.
    authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: ca}},
    authorization: {mode: "Webhook"},
    podCIDR: POD_CIDR,
    resolvConf: "/etc/resolv.conf",
    // A shared development machine: evict only when it is truly out of room, never collect images.
    evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false
  };
}

function kubeProxyConfig(name: string, kubeconfig: string): object {
  return {
    apiVersion: "kubeproxy.config.k8s.io/v1alpha1",
    kind: "KubeProxyConfiguration",
    clientConnection: {kubeconfig},
    mode: "iptables",
    clusterCIDR: POD_CIDR,
    hostnameOverride: name,
    metricsBindAddress: "127.0.0.1:10249",
    healthzBindAddress: "127.0.0.1:10256",
    nodePortAddresses: ["primary"],
    // Leave the machine's conntrack table size alone.
    conntrack: {maxPerCore: 0}
  };
}

function nodeReady(cluster: ClusterState, name: string): boolean {
  try {
    const node = JSON.parse(kubectl(cluster.binDir, cluster.kubeconfig, ["get", "node", name, "-o", "json"])) as {status?: {conditions?: Array<{type: string; status: string}>}};
    return node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
  } catch {
    return false;
  }
}

const ctr = (args: string[]) => spawnSync("ctr", ["--address", `${RUN_DIR}/containerd.sock`, ...args], {encoding: "utf8"});

function run(command: string, args: string[]): string {
  const r = spawnSync(command, args, {encoding: "utf8"});
  if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

/** Every container of the node, killed and deleted while containerd still runs (their mounts go with them). */
function killContainers(): void {
  if (ctr(["version"]).status !== 0) return;
  const tasks = ctr(["-n", "k8s.io", "tasks", "ls", "-q"]).stdout.split("\n").filter(Boolean);
  for (const task of tasks) ctr(["-n", "k8s.io", "tasks", "kill", "-s", "SIGKILL", task]);
  for (const task of tasks) ctr(["-n", "k8s.io", "tasks", "delete", "-f", task]);
  for (const container of ctr(["-n", "k8s.io", "containers", "ls", "-q"]).stdout.split("\n").filter(Boolean)) ctr(["-n", "k8s.io", "containers", "delete", container]);
}

/**
 * Removes what a node left on this machine, also after a crash: mounts under its folders,
 * the pods' network namespaces and addresses, the bridge, kube-proxy's iptables rules,
 * and its state.
 */
function cleanUp(dir: string, binDir: string): void {
  const mounts = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(`${dir}/`) || m.startsWith(`${RUN_DIR}/`) || m.startsWith("/run/netns/cni-"))
    .reverse();
  for (const mount of mounts) spawnSync("umount", ["-l", mount]);
  if (existsSync("/run/netns")) for (const ns of readdirSync("/run/netns").filter((n) => n.startsWith("cni-"))) spawnSync("ip", ["netns", "delete", ns]);
  spawnSync("ip", ["link", "delete", BRIDGE], {stdio: "ignore"});
  rmSync(`/var/lib/cni/networks/${CNI_NETWORK}`, {recursive: true, force: true});
  if (existsSync(join(binDir, "kube-proxy"))) spawnSync(join(binDir, "kube-proxy"), ["--cleanup"], {stdio: "ignore"});
  cleanIptables();
  rmSync(dir, {recursive: true, force: true});
  rmSync(RUN_DIR, {recursive: true, force: true});
}

/** Chains the kubelet creates in every table (kube-proxy's own go with `kube-proxy --cleanup`). */
const KUBELET_CHAINS = new Set(["KUBE-KUBELET-CANARY", "KUBE-FIREWALL", "KUBE-IPTABLES-HINT"]);

/**
 * Removes the kubelet's chains and the bridge plugin's masquerade chains of this node's
 * network (their rules carry `name: "paddock"`), leaving every other rule of the machine:
 * each table is saved, those lines dropped, and the rest restored in one step (rules are
 * matched as whole lines, so their quoted comments need no parsing).
 */
function cleanIptables(): void {
  for (const table of ["nat", "filter", "mangle"]) {
    const saved = spawnSync("iptables-save", ["-t", table], {encoding: "utf8"}).stdout ?? "";
    const ours = new Set(KUBELET_CHAINS);
    for (const line of saved.split("\n")) {
      const m = /^-A POSTROUTING .*name: \\"paddock\\".* -j (CNI-\S+)/.exec(line);
      if (m) ours.add(m[1]!);
    }
    const kept = saved.split("\n").filter((line) => {
      const declared = /^:(\S+) /.exec(line)?.[1];
      if (declared) return !ours.has(declared);
      const m = /^-A (\S+)(?:.* -j (\S+))?/.exec(line);
      return !m || !(ours.has(m[1]!) || (m[2] !== undefined && ours.has(m[2])));
    });
    if (kept.length === saved.split("\n").length) continue;
    const restored = spawnSync("iptables-restore", ["-T", table], {input: kept.join("\n"), encoding: "utf8"});
    if (restored.status !== 0) throw new Error(`removing the node's iptables chains from ${table} failed: ${restored.stderr}`);
  }
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}
