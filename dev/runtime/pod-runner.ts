import {spawn} from "node:child_process";
import {createWriteStream, mkdtempSync, rmSync, writeFileSync} from "node:fs";
import {join} from "node:path";
import type {KubeClient} from "../../operator/src/kube/kube-client.js";
import {Container} from "./container.js";
import {PlanError, planContainer, type ContainerSpec, type ProcessPlan} from "./pod-plan.js";
import {podIPFor, podStatus} from "./pod-status.js";
import type {ObjectData, Pod} from "./pod.js";
import {runProbe} from "./probes.js";
import {claimFolder} from "./local-volumes.js";
import {prepareVolumes} from "./volumes.js";

export type {Pod} from "./pod.js";
export {loopbackFor, podIPFor} from "./pod-status.js";

export interface RunnerDeps {
  readonly kube: KubeClient;
  readonly nodeIP: string;
  /** The checkout whose dist/ stands in for the image. */
  readonly appRoot: string;
  /** Where container logs and volumes go. */
  readonly workDir: string;
  /** Local directory for a hostPath volume's path (the model folder, for example). */
  readonly hostPath: (path: string) => string;
  readonly log: (message: string, fields?: Record<string, unknown>) => void;
  /** Clock in ms. Defaults to Date.now. */
  readonly now?: () => number;
  /** The API server as pods reach it, for service account kubeconfigs. */
  readonly apiServer?: {readonly server: string; readonly caData: string};
}

/**
 * Runs one pod bound to the local node: its volumes as local folders (volumes.ts), its init
 * containers then its containers as supervised processes (container.ts) with HTTP probes
 * (probes.ts), and the pod status a user reads with `kubectl get/describe pod`
 * (pod-status.ts). Development only: it plays the kubelet and container runtime that a
 * laptop does not have.
 */
export class PodRunner {
  readonly #containers: Container[];
  readonly #dir: string;
  readonly #now: () => number;
  readonly #data: ObjectData;
  #volumes = new Map<string, string>();
  #kubeconfig: string | undefined;
  #initialized = false;
  #initError: {reason: string; message: string} | undefined;
  #terminating = false;
  #termination: Promise<void> | undefined;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #lastStatus = "";
  readonly startTime: string;

  /** The pod's IP as the API shows it; the process listens on its loopback twin. */
  readonly podIP: string;

  constructor(
    readonly pod: Pod,
    /** The loopback address the pod's processes listen on. */
    readonly listenIP: string,
    private readonly deps: RunnerDeps
  ) {
    this.#now = deps.now ?? Date.now;
    this.startTime = new Date(this.#now()).toISOString();
    this.podIP = podIPFor(listenIP);
    this.#dir = mkdtempSync(join(deps.workDir, `${pod.metadata.namespace}_${pod.metadata.name}-`));
    this.#data = async (kind, namespace, name) => {
      const obj = await deps.kube.get<{data?: Record<string, string>}>(`/api/v1/namespaces/${namespace}/${kind}/${name}`);
      return obj ? (obj.data ?? {}) : undefined;
    };
    this.#containers = pod.spec.containers.map(
      (spec) => new Container(spec, {logFile: join(this.#dir, `${spec.name}.log`), restartPolicy: pod.spec.restartPolicy ?? "Always", now: this.#now, log: deps.log})
    );
  }

  get key(): string {
    return `${this.pod.metadata.namespace}/${this.pod.metadata.name}`;
  }

  /** Folder with each container's log file (`<container>.log`). */
  get logDir(): string {
    return this.#dir;
  }

  async start(): Promise<void> {
    try {
      const token = await this.#serviceAccountToken();
      this.#volumes = await prepareVolumes(this.pod, this.#dir, this.#data, this.deps.hostPath, (ns, claim) => claimFolder(this.deps.kube, ns, claim), token && this.deps.apiServer ? {token, caCert: Buffer.from(this.deps.apiServer.caData, "base64").toString("utf8")} : undefined);
      if (token) this.#kubeconfig = this.#writeKubeconfig(token);
      for (const init of this.pod.spec.initContainers ?? []) await this.#runToCompletion(init);
      this.#initialized = true;
      for (const c of this.#containers) this.#launch(c);
    } catch (e) {
      this.#initError = e instanceof PlanError ? {reason: e.reason, message: e.message} : {reason: "Error", message: e instanceof Error ? e.message : String(e)};
      this.deps.log("pod cannot start", {pod: this.key, ...this.#initError});
    }
    this.#timer = setInterval(() => void this.#tick(), 250);
    await this.#reportStatus();
  }

  /** Deletion: preStop, SIGTERM, SIGKILL after the grace period, then the pod object goes. */
  terminate(): Promise<void> {
    this.#termination ??= this.#terminate();
    return this.#termination;
  }

  async #terminate(): Promise<void> {
    this.#terminating = true;
    const graceS = this.pod.metadata.deletionGracePeriodSeconds ?? this.pod.spec.terminationGracePeriodSeconds ?? 30;
    const deadline = this.#now() + graceS * 1000;
    await this.#reportStatus();
    await Promise.all(this.#containers.map((c) => c.stop(deadline)));
    this.#stop();
    await this.deps.kube
      .request("DELETE", `/api/v1/namespaces/${this.pod.metadata.namespace}/pods/${this.pod.metadata.name}`, {gracePeriodSeconds: 0, preconditions: {uid: this.pod.metadata.uid}})
      .catch(() => {});
  }

  /** The pod object is gone (force-deleted): stop at once. */
  async kill(): Promise<void> {
    this.#terminating = true;
    await Promise.all(this.#containers.map((c) => c.stop(this.#now())));
    this.#stop();
  }

  #stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const c of this.#containers) c.closeLog();
    rmSync(this.#dir, {recursive: true, force: true});
  }

  async #plan(spec: ContainerSpec): Promise<ProcessPlan> {
    const {namespace, name} = this.pod.metadata;
    const secrets = new Map<string, Record<string, string> | undefined>();
    const configMaps = new Map<string, Record<string, string> | undefined>();
    // Look up every referenced Secret and ConfigMap first; planning itself is synchronous.
    for (const e of spec.env ?? []) {
      const s = e.valueFrom?.secretKeyRef;
      if (s && !secrets.has(s.name)) secrets.set(s.name, await this.#data("secrets", namespace, s.name));
      const c = e.valueFrom?.configMapKeyRef;
      if (c && !configMaps.has(c.name)) configMaps.set(c.name, await this.#data("configmaps", namespace, c.name));
    }
    return planContainer(spec, {
      namespace,
      podName: name,
      podIP: this.podIP,
      listenIP: this.listenIP,
      volumes: this.#volumes,
      appRoot: this.deps.appRoot,
      fakeGpus: true,
      ...(this.#kubeconfig ? {kubeconfig: this.#kubeconfig} : {}),
      secret: (n, k) => {
        const v = secrets.get(n)?.[k];
        return v === undefined ? undefined : Buffer.from(v, "base64").toString("utf8");
      },
      configMap: (n, k) => configMaps.get(n)?.[k]
    });
  }

  /**
   * The pod's service account token, bound to the pod, as a kubelet requests it
   * (TokenRequest); undefined when the pod mounts none.
   */
  async #serviceAccountToken(): Promise<string | undefined> {
    const {serviceAccountName, automountServiceAccountToken} = this.pod.spec;
    if (!serviceAccountName || automountServiceAccountToken === false || !this.deps.apiServer) return undefined;
    if (!(this.pod.spec.volumes ?? []).some((v) => v.projected?.sources?.some((s) => s.serviceAccountToken))) return undefined;
    const {namespace, name, uid} = this.pod.metadata;
    const request = {apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: {expirationSeconds: 86_400, boundObjectRef: {apiVersion: "v1", kind: "Pod", name, uid}}};
    const answer = await this.deps.kube.request<{status: {token: string}}>("POST", `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccountName}/token`, request);
    return answer.status.token;
  }

  /**
   * The token in a kubeconfig (KUBECONFIG): in-cluster clients read the token from a fixed
   * path this runtime cannot remap, so the process gets the same rights this way.
   */
  #writeKubeconfig(token: string): string {
    const file = join(this.#dir, "kubeconfig");
    const account = this.pod.spec.serviceAccountName!;
    const config = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{name: "local", cluster: {server: this.deps.apiServer!.server, "certificate-authority-data": this.deps.apiServer!.caData}}],
      users: [{name: account, user: {token}}],
      contexts: [{name: "pod", context: {cluster: "local", user: account, namespace: this.pod.metadata.namespace}}],
      "current-context": "pod"
    };
    writeFileSync(file, JSON.stringify(config), {mode: 0o600});
    return file;
  }

  async #runToCompletion(spec: ContainerSpec): Promise<void> {
    const plan = await this.#plan(spec);
    const child = spawn(plan.file, plan.args, {cwd: plan.cwd, env: plan.env, stdio: ["ignore", "pipe", "pipe"]});
    const log = createWriteStream(join(this.#dir, `${spec.name}.log`));
    child.stdout!.pipe(log, {end: false});
    let tail = "";
    child.stderr!.on("data", (b: Buffer) => {
      log.write(b);
      tail = (tail + b.toString()).slice(-1000);
    });
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    log.end();
    if (code !== 0) throw new PlanError("InitContainerFailed", `init container ${spec.name} exited with ${code}: ${tail.trim()}`);
  }

  #launch(c: Container): void {
    void this.#plan(c.spec).then(
      (plan) => {
        if (!this.#terminating) c.start(plan, this.listenIP, this.key);
      },
      (e: unknown) => c.failedToStart(e instanceof PlanError ? {reason: e.reason, message: e.message} : {reason: "Error", message: String(e)})
    );
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    await Promise.all(
      this.#containers.map(async (c) => {
        if (this.#initialized && !this.#terminating && c.restartDue()) this.#launch(c);
        await c.probe((probe) => runProbe(probe, this.pod, this.listenIP), this.#terminating, this.key);
      })
    );
    await this.#reportStatus().catch((e: unknown) => this.deps.log("pod status not written", {pod: this.key, error: String(e)}));
  }

  /** Pod status as a kubelet reports it, written only when it changed. */
  async #reportStatus(): Promise<void> {
    if (this.#stopped && !this.#terminating) return;
    const status = podStatus({
      pod: this.pod,
      nodeIP: this.deps.nodeIP,
      podIP: this.podIP,
      startTime: this.startTime,
      initialized: this.#initialized,
      initError: this.#initError,
      terminating: this.#terminating,
      containers: this.#containers.map((c) => c.view())
    });
    const text = JSON.stringify(status);
    if (text === this.#lastStatus) return;
    // Transition times only matter to readers; keep them out of the comparison.
    const at = new Date(this.#now()).toISOString();
    const withTimes = {...status, conditions: (status["conditions"] as object[]).map((c) => ({...c, lastTransitionTime: at}))};
    await this.deps.kube.request("PATCH", `/api/v1/namespaces/${this.pod.metadata.namespace}/pods/${this.pod.metadata.name}/status`, {status: withTimes}, "application/merge-patch+json");
    this.#lastStatus = text;
  }
}
