import type {Pod} from "./pod.js";

/** What the runner knows of one container, enough to report its status. */
export interface ContainerView {
  readonly name: string;
  readonly image: string;
  readonly running: boolean;
  readonly startedAt: string | undefined;
  readonly started: boolean;
  readonly ready: boolean;
  readonly restartCount: number;
  /** Why it is not running (CrashLoopBackOff, CreateContainerConfigError, ...). */
  readonly waiting: {reason: string; message: string} | undefined;
  readonly lastTerminated: {exitCode: number; reason: string; message: string; finishedAt: string} | undefined;
  /** A restart is scheduled. */
  readonly restarting: boolean;
  /** It exited and its pod's restart policy keeps it down (a Job's pod): lastTerminated is its final state. */
  readonly terminated: boolean;
}

/** The pod as the runner sees it. */
export interface PodState {
  readonly pod: Pod;
  readonly nodeIP: string;
  readonly podIP: string;
  readonly startTime: string;
  readonly initialized: boolean;
  /** The pod cannot start (volumes, init containers): why. */
  readonly initError: {reason: string; message: string} | undefined;
  readonly terminating: boolean;
  readonly containers: readonly ContainerView[];
}

/**
 * The pod's status as a kubelet reports it (`kubectl get/describe pod` reads it): phase,
 * conditions, IPs and container statuses. Pure; transition times are left to the writer,
 * so two equal states give byte-equal statuses and unchanged ones need no write.
 */
export function podStatus(s: PodState): Record<string, unknown> {
  const allReady = !s.terminating && s.containers.every((c) => c.ready);
  const running = s.containers.some((c) => c.running);
  // Every container done for good (restartPolicy Never/OnFailure): the pod ran to completion.
  const finished = s.containers.length > 0 && s.containers.every((c) => c.terminated);
  const phase = finished ? (s.containers.every((c) => c.lastTerminated?.exitCode === 0) ? "Succeeded" : "Failed") : s.initError ? "Pending" : running || s.containers.some((c) => c.restarting) ? "Running" : "Pending";
  const cond = (type: string, ok: boolean, reason?: string, message?: string) => ({type, status: ok ? "True" : "False", ...(reason ? {reason} : {}), ...(message ? {message} : {})});
  return {
    phase,
    hostIP: s.nodeIP,
    podIP: s.podIP,
    podIPs: [{ip: s.podIP}],
    startTime: s.startTime,
    conditions: [
      cond("PodScheduled", true),
      cond("Initialized", s.initialized, s.initError ? "ContainersNotInitialized" : undefined, s.initError?.message),
      cond("ContainersReady", allReady, allReady ? undefined : "ContainersNotReady"),
      cond("Ready", allReady, allReady ? undefined : "ContainersNotReady")
    ],
    containerStatuses: s.containers.map((c) => ({
      name: c.name,
      image: c.image,
      imageID: "",
      ready: c.ready,
      started: c.started,
      restartCount: c.restartCount,
      state: c.running
        ? {running: {startedAt: c.startedAt}}
        : c.terminated && c.lastTerminated
          ? {terminated: c.lastTerminated}
          : {waiting: c.waiting ?? s.initError ?? {reason: s.initialized ? "ContainerCreating" : "PodInitializing"}},
      ...(c.lastTerminated && !c.terminated ? {lastState: {terminated: c.lastTerminated}} : {})
    }))
  };
}

/** Restart back-off after the n-th restart (0-based), as the kubelet's: 1 s doubling, capped. */
export function restartDelayMs(restartCount: number, capMs = 30_000): number {
  return Math.min(capMs, 1000 * 2 ** restartCount);
}

/**
 * The API server refuses loopback addresses in EndpointSlices, so a pod listening on
 * 127.42.b.c is reported as 10.42.b.c; the local service proxy maps it back (loopbackFor).
 */
export const podIPFor = (loopback: string) => loopback.replace(/^127\./, "10.");
export const loopbackFor = (podIP: string) => podIP.replace(/^10\.42\./, "127.42.");
