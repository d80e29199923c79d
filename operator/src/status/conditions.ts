import type {Condition} from "../api/llmservice.js";
import type {Observation} from "./observe.js";

type Draft = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

/**
 * The service's conditions, following Kubernetes API conventions: `Ready` (serving at
 * least one replica), `Progressing` (a rollout or scale is under way) and `Degraded`
 * (something needs a human: no GPU capacity, a failed model download, a crashing server,
 * an unavailable cache). Pure; `lastTransitionTime` moves only when a status changes.
 * Conditions of other writers (the autoscaler's ScalingActive) are left untouched.
 */
export function nextConditions(observed: Observation, previous: readonly Condition[], now: Date): Condition[] {
  const drafts = [ready(observed), progressing(observed), degraded(observed), modelReady(observed)];
  const at = now.toISOString();
  return drafts.map((d) => {
    const old = previous.find((c) => c.type === d.type);
    return {...d, observedGeneration: observed.generation, lastTransitionTime: old && old.status === d.status ? old.lastTransitionTime : at};
  });
}

/** Why the service is not as wanted, most actionable first; undefined when nothing is wrong. */
function problem(o: Observation): {reason: string; message: string} | undefined {
  if (o.applyFailed !== undefined) return {reason: "ApplyFailed", message: o.applyFailed};
  if (o.model.failed) return {reason: "ModelDownloadFailed", message: `${o.model.reason}: ${o.model.message}`};
  if (o.pods.modelDownloadFailed) return {reason: "ModelDownloadFailed", message: o.pods.modelDownloadFailed};
  if (o.pods.insufficientGpu > 0) {
    return {
      reason: "InsufficientGPU",
      message: `${o.pods.insufficientGpu} pod(s) cannot be scheduled: ${o.pods.insufficientGpuMessage ?? "not enough GPUs"}`
    };
  }
  if (o.pods.gpuUnavailable) return {reason: "GPUUnavailable", message: o.pods.gpuUnavailable};
  if (o.pods.crashLooping) return {reason: "ServerCrashLooping", message: o.pods.crashLooping};
  const stuck = o.deployment?.conditions.find((c) => c.type === "Progressing" && c.reason === "ProgressDeadlineExceeded");
  if (stuck) return {reason: "ProgressDeadlineExceeded", message: stuck.message ?? "the rollout made no progress"};
  if (o.managedRedisReady === false) return {reason: "CacheUnavailable", message: "the namespace's managed Redis has no ready replica; requests are served without cache"};
  return undefined;
}

function ready(o: Observation): Draft {
  const d = o.deployment;
  const readyCount = d?.readyReplicas ?? 0;
  if (o.routerReadyReplicas === 0 && d) return {type: "Ready", status: "False", reason: "RouterStarting", message: "no router pod is ready yet: requests cannot reach the replicas"};
  if (readyCount > 0) return {type: "Ready", status: "True", reason: "Serving", message: `${readyCount} of ${o.desiredReplicas} replicas ready`};
  if (o.desiredReplicas === 0 && d && d.replicas === 0) {
    return {type: "Ready", status: "True", reason: "ScaledToZero", message: "no replica runs while there is no load; the router holds the next request and the first one wakes the service"};
  }
  const p = problem(o);
  if (p && p.reason !== "CacheUnavailable") return {type: "Ready", status: "False", ...p};
  if (!d && !o.model.ready) return {type: "Ready", status: "False", reason: "DownloadingModel", message: `replicas start once the model is downloaded and verified: ${o.model.message}`};
  return {type: "Ready", status: "False", reason: d ? "Starting" : "Creating", message: d ? "no replica is ready yet (loading the model)" : "creating the Deployment"};
}

function progressing(o: Observation): Draft {
  const d = o.deployment;
  if (!d && !o.model.ready && !o.model.failed) return {type: "Progressing", status: "True", reason: "DownloadingModel", message: o.model.message};
  if (!d) return {type: "Progressing", status: "True", reason: "Creating", message: "creating the Deployment"};
  if (d.observedGeneration < d.generation) return {type: "Progressing", status: "True", reason: "RollingOut", message: "the Deployment controller has not seen the latest change yet"};
  if (d.updatedReplicas < o.desiredReplicas) {
    return {type: "Progressing", status: "True", reason: "RollingOut", message: `${d.updatedReplicas} of ${o.desiredReplicas} replicas updated`};
  }
  if (d.readyReplicas !== o.desiredReplicas || d.replicas !== o.desiredReplicas) {
    return {type: "Progressing", status: "True", reason: "Scaling", message: `${d.readyReplicas} of ${o.desiredReplicas} replicas ready`};
  }
  return {type: "Progressing", status: "False", reason: "Stable", message: `all ${o.desiredReplicas} replicas updated and ready`};
}

function degraded(o: Observation): Draft {
  const p = problem(o);
  return p ? {type: "Degraded", status: "True", ...p} : {type: "Degraded", status: "False", reason: "AsExpected", message: "no problem detected"};
}

function modelReady(o: Observation): Draft {
  return {type: "ModelReady", status: o.model.ready ? "True" : "False", reason: o.model.reason, message: o.model.message};
}

/** Conditions whose status or reason changed: each becomes a Kubernetes Event. */
export function transitions(previous: readonly Condition[], next: readonly Condition[]): Condition[] {
  return next.filter((c) => {
    const old = previous.find((p) => p.type === c.type);
    return !old || old.status !== c.status || old.reason !== c.reason;
  });
}
