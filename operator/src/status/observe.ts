import type {V1Pod} from "@kubernetes/client-node";
import {CONTAINER, EXIT_GPU_UNAVAILABLE} from "../../../contract/index.js";
/** What the reconciler saw, reduced to the facts conditions depend on. Pure data. */
export interface Observation {
  readonly generation: number;
  readonly desiredReplicas: number;
  readonly deployment?: {
    readonly observedGeneration: number;
    readonly generation: number;
    readonly replicas: number;
    readonly readyReplicas: number;
    readonly updatedReplicas: number;
    readonly conditions: ReadonlyArray<{type: string; status: string; reason?: string; message?: string}>;
  };
  readonly pods: PodProblems;
  /** Undefined when the service does not use the managed Redis. */
  readonly managedRedisReady?: boolean;
  /** Ready router pods; undefined when routing is off. */
  readonly routerReadyReplicas?: number;
  /** The API server refused an object the operator applied: its message. */
  readonly applyFailed?: string;
  /** Whether the model file is there for the replicas (the ModelReady condition). */
  readonly model: ModelReadiness;
}

export interface ModelReadiness {
  readonly ready: boolean;
  /** Failed for good (until the spec changes or the Job is deleted). */
  readonly failed: boolean;
  readonly reason: string;
  readonly message: string;
}

export interface PodProblems {
  /** Pods the scheduler cannot place for lack of GPUs, and the scheduler's message. */
  readonly insufficientGpu: number;
  readonly insufficientGpuMessage?: string;
  /** The model download (init container) failed; its message. */
  readonly modelDownloadFailed?: string;
  /** The server container keeps crashing; its last message. */
  readonly crashLooping?: string;
  /** The server found no usable GPU although the pod requests one; its message. */
  readonly gpuUnavailable?: string;
}

/** Reads scheduling and container failures from the service's pods. */
export function podProblems(pods: readonly V1Pod[], gpuResourceName: string): PodProblems {
  let insufficientGpu = 0;
  let insufficientGpuMessage: string | undefined;
  let modelDownloadFailed: string | undefined;
  let crashLooping: string | undefined;
  let gpuUnavailable: string | undefined;
  for (const pod of pods) {
    const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
    if (scheduled?.status === "False" && scheduled.reason === "Unschedulable" && scheduled.message?.includes(`Insufficient ${gpuResourceName}`)) {
      insufficientGpu++;
      insufficientGpuMessage ??= scheduled.message;
    }
    for (const c of pod.status?.initContainerStatuses ?? []) {
      const failed = c.state?.terminated && c.state.terminated.exitCode !== 0 ? c.state.terminated : c.lastState?.terminated && c.lastState.terminated.exitCode !== 0 ? c.lastState.terminated : undefined;
      if (c.name === CONTAINER.fetchModel && failed) modelDownloadFailed ??= failed.message?.trim() || `${CONTAINER.fetchModel} exited with code ${failed.exitCode}`;
    }
    for (const c of pod.status?.containerStatuses ?? []) {
      const exit = c.state?.terminated ?? c.lastState?.terminated;
      if (c.name === CONTAINER.server && exit?.exitCode === EXIT_GPU_UNAVAILABLE) gpuUnavailable ??= exit.message?.trim() || "the server found no usable GPU";
      if (c.state?.waiting?.reason === "CrashLoopBackOff") crashLooping ??= c.lastState?.terminated?.message?.trim() || c.state.waiting.message || "the server keeps crashing";
    }
  }
  return {
    insufficientGpu,
    ...(insufficientGpuMessage ? {insufficientGpuMessage} : {}),
    ...(modelDownloadFailed ? {modelDownloadFailed} : {}),
    ...(crashLooping ? {crashLooping} : {}),
    ...(gpuUnavailable ? {gpuUnavailable} : {})
  };
}
