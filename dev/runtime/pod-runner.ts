import {spawn, type ChildProcess} from "node:child_process";
import {createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync, type WriteStream} from "node:fs";
import {join} from "node:path";
import type {KubeClient} from "../../operator/src/kube/kube-client.js";
import {PlanError, planContainer, type ContainerSpec, type ProcessPlan} from "./pod-plan.js";

/** What the runner reads of a pod. */
export interface Pod {
  metadata: {name: string; namespace: string; uid: string; deletionTimestamp?: string; deletionGracePeriodSeconds?: number};
  spec: {
    containers: Array<ContainerSpec & {startupProbe?: Probe; readinessProbe?: Probe; livenessProbe?: Probe; lifecycle?: {preStop?: {sleep?: {seconds: number}; exec?: {command: string[]}}}}>;
    initContainers?: ContainerSpec[];
    volumes?: Array<{name: string; emptyDir?: object; hostPath?: {path: string}; secret?: {secretName: string; items?: Array<{key: string; path: string}>}; configMap?: {name: string; items?: Array<{key: string; path: string}>}; persistentVolumeClaim?: object}>;
    restartPolicy?: "Always" | "OnFailure" | "Never";
    terminationGracePeriodSeconds?: number;
  };
}

interface Probe {
  httpGet?: {path?: string; port: number | string};
  periodSeconds?: number;
  failureThreshold?: number;
  timeoutSeconds?: number;
}

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
}

interface ContainerState {
  readonly spec: Pod["spec"]["containers"][number];
  child?: ChildProcess | undefined;
  startedAt?: string;
  started: boolean;
  ready: boolean;
  restartCount: number;
  failures: {startup: number; readiness: number; liveness: number};
  nextProbe: {startup: number; readiness: number; liveness: number};
  waiting?: {reason: string; message: string} | undefined;
  lastTerminated?: {exitCode: number; reason: string; message: string; finishedAt: string};
  restartAt?: number | undefined;
  log?: WriteStream;
  stderrTail: string;
}

const BACKOFF_CAP_MS = 30_000;

/**
 * The API server refuses loopback addresses in EndpointSlices, so a pod listening on
 * 127.42.b.c is reported as 10.42.b.c; the local service proxy maps it back (loopbackFor).
 */
export const podIPFor = (loopback: string) => loopback.replace(/^127\./, "10.");
export const loopbackFor = (podIP: string) => podIP.replace(/^10\.42\./, "127.42.");

/**
 * Runs one pod bound to the local node: its volumes as local folders, its init containers
 * then its containers as processes, its HTTP probes, restarts with back-off, and a pod
 * status a user reads with `kubectl get/describe pod`. Development only: it plays the
 * kubelet and container runtime that a laptop does not have.
 */
export class PodRunner {
  readonly #containers: ContainerState[];
  readonly #dir: string;
  #volumes = new Map<string, string>();
  #initialized = false;
  #initError: {reason: string; message: string} | undefined;
  #terminating = false;
  #termination: Promise<void> | undefined;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #lastStatus = "";
  readonly startTime = new Date().toISOString();

  /** The pod's IP as the API shows it; the process listens on its loopback twin. */
  readonly podIP: string;

  constructor(
    readonly pod: Pod,
    /** The loopback address the pod's processes listen on. */
    readonly listenIP: string,
    private readonly deps: RunnerDeps
  ) {
    this.podIP = podIPFor(listenIP);
    this.#dir = mkdtempSync(join(deps.workDir, `${pod.metadata.namespace}_${pod.metadata.name}-`));
    this.#containers = pod.spec.containers.map((spec) => ({spec, started: false, ready: false, restartCount: 0, failures: {startup: 0, readiness: 0, liveness: 0}, nextProbe: {startup: 0, readiness: 0, liveness: 0}, stderrTail: ""}));
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
      this.#volumes = await this.#prepareVolumes();
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
    const deadline = Date.now() + graceS * 1000;
    await this.#reportStatus();
    await Promise.all(
      this.#containers.map(async (c) => {
        const preStop = c.spec.lifecycle?.preStop;
        const sleepS = preStop?.sleep?.seconds ?? (preStop?.exec?.command[0] === "sleep" ? Number(preStop.exec.command[1]) : 0);
        if (sleepS > 0 && c.child) await new Promise((r) => setTimeout(r, Math.min(sleepS * 1000, deadline - Date.now())));
        await this.#stopProcess(c, Math.max(0, deadline - Date.now()));
      })
    );
    this.#stop();
    await this.deps.kube
      .request("DELETE", `/api/v1/namespaces/${this.pod.metadata.namespace}/pods/${this.pod.metadata.name}`, {gracePeriodSeconds: 0, preconditions: {uid: this.pod.metadata.uid}})
      .catch(() => {});
  }

  /** The pod object is gone (force-deleted): stop at once. */
  async kill(): Promise<void> {
    this.#terminating = true;
    await Promise.all(this.#containers.map((c) => this.#stopProcess(c, 0)));
    this.#stop();
  }

  #stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
    for (const c of this.#containers) c.log?.end();
    rmSync(this.#dir, {recursive: true, force: true});
  }

  async #prepareVolumes(): Promise<Map<string, string>> {
    const volumes = new Map<string, string>();
    const {namespace} = this.pod.metadata;
    for (const v of this.pod.spec.volumes ?? []) {
      if (v.hostPath) volumes.set(v.name, this.deps.hostPath(v.hostPath.path));
      else if (v.emptyDir) {
        const dir = join(this.#dir, "volumes", v.name);
        mkdirSync(dir, {recursive: true});
        volumes.set(v.name, dir);
      }
      else if (v.secret || v.configMap) {
        const kind = v.secret ? "secrets" : "configmaps";
        const name = v.secret ? v.secret.secretName : v.configMap!.name;
        const obj = await this.deps.kube.get<{data?: Record<string, string>}>(`/api/v1/namespaces/${namespace}/${kind}/${name}`);
        if (!obj) throw new PlanError("CreateContainerConfigError", `${kind.slice(0, -1)} "${name}" not found`);
        const dir = join(this.#dir, "volumes", v.name);
        mkdirSync(dir, {recursive: true});
        const items = (v.secret ?? v.configMap)!.items ?? Object.keys(obj.data ?? {}).map((key) => ({key, path: key}));
        for (const item of items) {
          const raw = obj.data?.[item.key];
          if (raw === undefined) throw new PlanError("CreateContainerConfigError", `key "${item.key}" not found in ${kind.slice(0, -1)} "${name}"`);
          writeFileSync(join(dir, item.path), v.secret ? Buffer.from(raw, "base64") : raw, {mode: 0o600});
        }
        volumes.set(v.name, dir);
      } else throw new PlanError("CreateContainerConfigError", `volume ${v.name}: only emptyDir, hostPath, secret and configMap volumes run locally`);
    }
    return volumes;
  }

  async #plan(spec: ContainerSpec): Promise<ProcessPlan> {
    const {namespace, name} = this.pod.metadata;
    const secrets = new Map<string, Record<string, string> | undefined>();
    const configMaps = new Map<string, Record<string, string> | undefined>();
    // Look up every referenced Secret and ConfigMap first; planning itself is synchronous.
    for (const e of spec.env ?? []) {
      const s = e.valueFrom?.secretKeyRef;
      if (s && !secrets.has(s.name)) secrets.set(s.name, (await this.deps.kube.get<{data?: Record<string, string>}>(`/api/v1/namespaces/${namespace}/secrets/${s.name}`))?.data);
      const c = e.valueFrom?.configMapKeyRef;
      if (c && !configMaps.has(c.name)) configMaps.set(c.name, (await this.deps.kube.get<{data?: Record<string, string>}>(`/api/v1/namespaces/${namespace}/configmaps/${c.name}`))?.data);
    }
    return planContainer(spec, {
      namespace,
      podName: name,
      podIP: this.podIP,
      listenIP: this.listenIP,
      volumes: this.#volumes,
      appRoot: this.deps.appRoot,
      secret: (n, k) => {
        const v = secrets.get(n)?.[k];
        return v === undefined ? undefined : Buffer.from(v, "base64").toString("utf8");
      },
      configMap: (n, k) => configMaps.get(n)?.[k]
    });
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

  #launch(c: ContainerState): void {
    void this.#plan(c.spec).then(
      (plan) => {
        if (this.#terminating) return;
        c.waiting = undefined;
        c.log ??= createWriteStream(join(this.#dir, `${c.spec.name}.log`), {flags: "a"});
        const child = spawn(plan.file, plan.args, {cwd: plan.cwd, env: plan.env, stdio: ["ignore", "pipe", "pipe"]});
        c.child = child;
        c.startedAt = new Date().toISOString();
        c.started = !c.spec.startupProbe;
        c.ready = false;
        c.failures = {startup: 0, readiness: 0, liveness: 0};
        c.nextProbe = {startup: Date.now(), readiness: Date.now(), liveness: Date.now()};
        child.stdout!.pipe(c.log, {end: false});
        child.stderr!.on("data", (b: Buffer) => {
          c.log?.write(b);
          c.stderrTail = (c.stderrTail + b.toString()).slice(-1000);
        });
        child.once("exit", (code, signal) => this.#exited(c, child, code, signal));
        this.deps.log("container started", {pod: this.key, container: c.spec.name, ip: this.listenIP, pid: child.pid});
      },
      (e: unknown) => {
        c.waiting = e instanceof PlanError ? {reason: e.reason, message: e.message} : {reason: "Error", message: String(e)};
        c.restartAt = Date.now() + 5_000; // a missing Secret may appear: try again
      }
    );
  }

  #exited(c: ContainerState, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (c.child !== child) return;
    c.child = undefined;
    c.ready = false;
    const exitCode = code ?? 128 + (signal === "SIGKILL" ? 9 : 15);
    c.lastTerminated = {exitCode, reason: exitCode === 0 ? "Completed" : "Error", message: c.stderrTail.trim().slice(-500), finishedAt: new Date().toISOString()};
    if (this.#terminating) return;
    const policy = this.pod.spec.restartPolicy ?? "Always";
    if (policy === "Never" || (policy === "OnFailure" && exitCode === 0)) return;
    const delay = Math.min(BACKOFF_CAP_MS, 1000 * 2 ** c.restartCount);
    c.restartCount++;
    c.waiting = {reason: "CrashLoopBackOff", message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${c.spec.name} pod=${this.pod.metadata.name}`};
    c.restartAt = Date.now() + delay;
    this.deps.log("container exited", {pod: this.key, container: c.spec.name, exitCode, restartInMs: delay});
  }

  async #stopProcess(c: ContainerState, graceMs: number): Promise<void> {
    const child = c.child;
    if (!child) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill(graceMs > 0 ? "SIGTERM" : "SIGKILL");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    const now = Date.now();
    await Promise.all(
      this.#containers.map(async (c) => {
        if (!c.child) {
          if (this.#initialized && !this.#terminating && c.restartAt !== undefined && now >= c.restartAt) {
            c.restartAt = undefined;
            this.#launch(c);
          }
          return;
        }
        if (!c.started) {
          // Startup probes run every second at most here (the kubelet uses periodSeconds), so a
          // local pod is Ready as soon as its server is.
          if (c.spec.startupProbe && now >= c.nextProbe.startup) {
            c.nextProbe.startup = now + Math.min(1, c.spec.startupProbe.periodSeconds ?? 10) * 1000;
            if (await this.#probe(c.spec.startupProbe)) {
              c.started = true;
              c.nextProbe.readiness = c.nextProbe.liveness = now;
            } else if (++c.failures.startup >= (c.spec.startupProbe.failureThreshold ?? 3) * Math.max(1, c.spec.startupProbe.periodSeconds ?? 10)) {
              await this.#stopProcess(c, 0);
            }
          }
          return;
        }
        const readiness = c.spec.readinessProbe;
        if (!readiness) c.ready = true;
        else if (now >= c.nextProbe.readiness) {
          c.nextProbe.readiness = now + (readiness.periodSeconds ?? 10) * 1000;
          if (await this.#probe(readiness)) {
            c.failures.readiness = 0;
            c.ready = true;
          } else if (++c.failures.readiness >= (readiness.failureThreshold ?? 3) || this.#terminating) c.ready = false;
        }
        const liveness = c.spec.livenessProbe;
        if (liveness && now >= c.nextProbe.liveness && !this.#terminating) {
          c.nextProbe.liveness = now + (liveness.periodSeconds ?? 10) * 1000;
          if (await this.#probe(liveness)) c.failures.liveness = 0;
          else if (++c.failures.liveness >= (liveness.failureThreshold ?? 3)) {
            this.deps.log("liveness probe failed; restarting", {pod: this.key, container: c.spec.name});
            await this.#stopProcess(c, 0);
          }
        }
      })
    );
    await this.#reportStatus().catch((e: unknown) => this.deps.log("pod status not written", {pod: this.key, error: String(e)}));
  }

  async #probe(probe: Probe): Promise<boolean> {
    if (!probe.httpGet) return true;
    const port = typeof probe.httpGet.port === "number" ? probe.httpGet.port : this.pod.spec.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === probe.httpGet!.port)?.containerPort;
    try {
      const res = await fetch(`http://${this.listenIP}:${port}${probe.httpGet.path ?? "/"}`, {signal: AbortSignal.timeout((probe.timeoutSeconds ?? 1) * 1000)});
      await res.arrayBuffer();
      return res.status >= 200 && res.status < 400;
    } catch {
      return false;
    }
  }

  /** Pod status as a kubelet reports it, written only when it changed. */
  async #reportStatus(): Promise<void> {
    if (this.#stopped && !this.#terminating) return;
    const allReady = !this.#terminating && this.#containers.every((c) => c.ready);
    const running = this.#containers.some((c) => c.child);
    const at = new Date().toISOString();
    const cond = (type: string, ok: boolean, reason?: string, message?: string) => ({type, status: ok ? "True" : "False", ...(reason ? {reason} : {}), ...(message ? {message} : {})});
    const status = {
      phase: this.#initError ? "Pending" : running || this.#containers.some((c) => c.restartAt !== undefined) ? "Running" : "Pending",
      hostIP: this.deps.nodeIP,
      podIP: this.podIP,
      podIPs: [{ip: this.podIP}],
      startTime: this.startTime,
      conditions: [
        cond("PodScheduled", true),
        cond("Initialized", this.#initialized, this.#initError ? "ContainersNotInitialized" : undefined, this.#initError?.message),
        cond("ContainersReady", allReady, allReady ? undefined : "ContainersNotReady"),
        cond("Ready", allReady, allReady ? undefined : "ContainersNotReady")
      ],
      containerStatuses: this.#containers.map((c) => ({
        name: c.spec.name,
        image: c.spec.image,
        imageID: "",
        ready: c.ready,
        started: c.started,
        restartCount: c.restartCount,
        state: c.child
          ? {running: {startedAt: c.startedAt}}
          : {waiting: c.waiting ?? this.#initError ?? {reason: this.#initialized ? "ContainerCreating" : "PodInitializing"}},
        ...(c.lastTerminated ? {lastState: {terminated: c.lastTerminated}} : {})
      }))
    };
    const text = JSON.stringify(status);
    if (text === this.#lastStatus) return;
    // Transition times only matter to readers; keep them out of the comparison.
    const withTimes = {...status, conditions: status.conditions.map((c) => ({...c, lastTransitionTime: at}))};
    await this.deps.kube.request("PATCH", `/api/v1/namespaces/${this.pod.metadata.namespace}/pods/${this.pod.metadata.name}/status`, {status: withTimes}, "application/merge-patch+json");
    this.#lastStatus = text;
  }
}
