import {spawn, type ChildProcess} from "node:child_process";
import {createWriteStream, type WriteStream} from "node:fs";
import type {ProcessPlan} from "./pod-plan.js";
import type {Pod, Probe} from "./pod.js";
import {restartDelayMs, type ContainerView} from "./pod-status.js";

type Spec = Pod["spec"]["containers"][number];

export interface ContainerDeps {
  /** The container's log file (appended across restarts). */
  readonly logFile: string;
  readonly restartPolicy: "Always" | "OnFailure" | "Never";
  readonly now: () => number;
  readonly log: (message: string, fields?: Record<string, unknown>) => void;
}

/**
 * One container of a local pod as a supervised process: start, exit, restart with the
 * kubelet's back-off, and the startup/readiness/liveness probe state machine.
 */
export class Container {
  #child: ChildProcess | undefined;
  #startedAt: string | undefined;
  #started = false;
  #ready = false;
  #restartCount = 0;
  #failures = {startup: 0, readiness: 0, liveness: 0};
  #nextProbe = {startup: 0, readiness: 0, liveness: 0};
  #waiting: {reason: string; message: string} | undefined;
  #lastTerminated: ContainerView["lastTerminated"];
  #restartAt: number | undefined;
  #log: WriteStream | undefined;
  #stderrTail = "";
  #stopping = false;

  constructor(
    readonly spec: Spec,
    private readonly deps: ContainerDeps
  ) {}

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** A restart is due now. */
  restartDue(): boolean {
    return !this.#child && !this.#stopping && this.#restartAt !== undefined && this.deps.now() >= this.#restartAt;
  }

  view(): ContainerView {
    return {
      name: this.spec.name,
      image: this.spec.image,
      running: this.#child !== undefined,
      startedAt: this.#startedAt,
      started: this.#started,
      ready: this.#ready,
      restartCount: this.#restartCount,
      waiting: this.#waiting,
      lastTerminated: this.#lastTerminated,
      restarting: this.#restartAt !== undefined,
      terminated:
        !this.#child &&
        this.#restartAt === undefined &&
        this.#lastTerminated !== undefined &&
        (this.deps.restartPolicy === "Never" || (this.deps.restartPolicy === "OnFailure" && this.#lastTerminated.exitCode === 0))
    };
  }

  start(plan: ProcessPlan, listenIP: string, podKey: string): void {
    if (this.#stopping) return;
    this.#restartAt = undefined;
    this.#waiting = undefined;
    this.#log ??= createWriteStream(this.deps.logFile, {flags: "a"});
    const child = spawn(plan.file, plan.args, {cwd: plan.cwd, env: plan.env, stdio: ["ignore", "pipe", "pipe"]});
    const now = this.deps.now();
    this.#child = child;
    this.#startedAt = new Date(now).toISOString();
    this.#started = !this.spec.startupProbe;
    this.#ready = false;
    this.#failures = {startup: 0, readiness: 0, liveness: 0};
    this.#nextProbe = {startup: now, readiness: now, liveness: now};
    child.stdout!.pipe(this.#log, {end: false});
    child.stderr!.on("data", (b: Buffer) => {
      this.#log?.write(b);
      this.#stderrTail = (this.#stderrTail + b.toString()).slice(-1000);
    });
    child.once("exit", (code, signal) => this.#exited(child, code, signal, podKey));
    this.deps.log("container started", {pod: podKey, container: this.spec.name, ip: listenIP, pid: child.pid});
  }

  /** It could not be started (a missing Secret may appear later): try again in 5 s. */
  failedToStart(waiting: {reason: string; message: string}): void {
    this.#waiting = waiting;
    this.#restartAt = this.deps.now() + 5_000;
  }

  #exited(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, podKey: string): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    this.#ready = false;
    const exitCode = code ?? 128 + (signal === "SIGKILL" ? 9 : 15);
    this.#lastTerminated = {exitCode, reason: exitCode === 0 ? "Completed" : "Error", message: this.#stderrTail.trim().slice(-500), finishedAt: new Date(this.deps.now()).toISOString()};
    if (this.#stopping) return;
    const policy = this.deps.restartPolicy;
    if (policy === "Never" || (policy === "OnFailure" && exitCode === 0)) return;
    const delay = restartDelayMs(this.#restartCount);
    this.#restartCount++;
    this.#waiting = {reason: "CrashLoopBackOff", message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${this.spec.name} pod=${podKey.split("/")[1]}`};
    this.#restartAt = this.deps.now() + delay;
    this.deps.log("container exited", {pod: podKey, container: this.spec.name, exitCode, restartInMs: delay});
  }

  /** SIGTERM (SIGKILL with no grace), SIGKILL once `graceMs` has passed. */
  async kill(graceMs: number): Promise<void> {
    const child = this.#child;
    if (!child) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill(graceMs > 0 ? "SIGTERM" : "SIGKILL");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /**
   * Stops for good (pod deletion), with no restart after this: the preStop sleep (while the
   * process runs), then SIGTERM, then SIGKILL at `deadlineMs` (on the injected clock).
   */
  async stop(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    this.#restartAt = undefined;
    const preStop = this.spec.lifecycle?.preStop;
    const sleepS = preStop?.sleep?.seconds ?? (preStop?.exec?.command[0] === "sleep" ? Number(preStop.exec.command[1]) : 0);
    if (sleepS > 0 && this.#child) await new Promise((r) => setTimeout(r, Math.max(0, Math.min(sleepS * 1000, deadlineMs - this.deps.now()))));
    await this.kill(Math.max(0, deadlineMs - this.deps.now()));
  }

  closeLog(): void {
    this.#log?.end();
  }

  /**
   * Runs the probes that are due. Startup probes run every second at most here (the kubelet
   * uses periodSeconds), so a local pod is Ready as soon as its server is. A failed startup
   * or liveness probe kills the process, and the restart policy takes over.
   */
  async probe(run: (probe: Probe) => Promise<boolean>, terminating: boolean, podKey: string): Promise<void> {
    if (!this.#child) return;
    const now = this.deps.now();
    const {startupProbe, readinessProbe, livenessProbe} = this.spec;
    if (!this.#started) {
      if (startupProbe && now >= this.#nextProbe.startup) {
        this.#nextProbe.startup = now + Math.min(1, startupProbe.periodSeconds ?? 10) * 1000;
        if (await run(startupProbe)) {
          this.#started = true;
          this.#nextProbe.readiness = this.#nextProbe.liveness = now;
        } else if (++this.#failures.startup >= (startupProbe.failureThreshold ?? 3) * Math.max(1, startupProbe.periodSeconds ?? 10)) {
          await this.kill(0);
        }
      }
      return;
    }
    if (!readinessProbe) this.#ready = true;
    else if (now >= this.#nextProbe.readiness) {
      this.#nextProbe.readiness = now + (readinessProbe.periodSeconds ?? 10) * 1000;
      if (await run(readinessProbe)) {
        this.#failures.readiness = 0;
        this.#ready = true;
      } else if (++this.#failures.readiness >= (readinessProbe.failureThreshold ?? 3) || terminating) this.#ready = false;
    }
    if (livenessProbe && now >= this.#nextProbe.liveness && !terminating) {
      this.#nextProbe.liveness = now + (livenessProbe.periodSeconds ?? 10) * 1000;
      if (await run(livenessProbe)) this.#failures.liveness = 0;
      else if (++this.#failures.liveness >= (livenessProbe.failureThreshold ?? 3)) {
        this.deps.log("liveness probe failed; restarting", {pod: podKey, container: this.spec.name});
        await this.kill(0);
      }
    }
  }
}
