import type {V1Job, V1PersistentVolumeClaim, V1Pod} from "@kubernetes/client-node";
import {CONTAINER} from "../../../contract/index.js";
import {lastProgress, parseDownloadFailure} from "../../../contract/model-download.js";
import type {ModelStatus} from "../api/llmservice.js";
import type {ModelCache} from "../desired/model-cache.js";

/** What the reconciler read of one service's shared model download. */
export interface ModelCacheObservation {
  readonly claim: V1PersistentVolumeClaim | undefined;
  readonly job: V1Job | undefined;
  /** The download Job's pods. */
  readonly pods: readonly V1Pod[];
  /** The last lines of the running download pod's log. */
  readonly logTail: string | undefined;
  /** Why the operator could not size the claim it must create, if so. */
  readonly sizeError: string | undefined;
}

/**
 * `status.model` from the claim, the Job, its newest pod and that pod's last progress line.
 * Pure. Failure reasons come from the download's termination message (`<reason>: ...`).
 */
export function modelStatus(cache: ModelCache, o: ModelCacheObservation): ModelStatus {
  const base = {claimName: cache.claimName, path: cache.subPath, job: cache.jobName};
  const failedCondition = o.job?.status?.conditions?.find((c) => c.type === "Failed" && c.status === "True");
  if ((o.job?.status?.succeeded ?? 0) > 0) return {...base, phase: "Ready", progress: "Ready", reason: "Downloaded", message: `${cache.subPath} is verified in PersistentVolumeClaim ${cache.claimName}`};
  const pod = newest(o.pods);
  const terminated = pod?.status?.containerStatuses?.find((c) => c.name === CONTAINER.fetchModel)?.state?.terminated;
  const podFailed = terminated !== undefined && terminated.exitCode !== 0 ? parseDownloadFailure(terminated.message?.trim() || "the download failed") : undefined;
  // Failed is the Job's verdict, not one pod's: between a failed pod and its replacement the
  // Job is still trying (status flapped to Failed and back before).
  if (failedCondition) {
    const {reason, message} = podFailed ?? parseDownloadFailure(failedCondition.message || "the download failed");
    return {...base, phase: "Failed", progress: `Failed: ${reason}`, reason, message};
  }
  if (!o.claim && o.sizeError) return {...base, phase: "Failed", progress: "Failed: SizeUnknown", reason: "SizeUnknown", message: o.sizeError};
  const pending = (message: string): ModelStatus => ({...base, phase: "Pending", progress: "Pending", reason: "Pending", message});
  const unbound = o.claim && o.claim.status?.phase !== "Bound" ? `PersistentVolumeClaim ${cache.claimName} is ${o.claim.status?.phase ?? "Pending"} (not bound to a volume yet)` : undefined;
  if (!o.claim) return pending(cache.managedClaim ? `creating PersistentVolumeClaim ${cache.claimName}` : `PersistentVolumeClaim ${cache.claimName} (spec.model.cache.claimName) does not exist`);
  if (!o.job) return pending(`creating the download Job ${cache.jobName}`);
  if (podFailed) return pending(`an attempt failed (${podFailed.reason}: ${podFailed.message}); Job ${cache.jobName} starts another`);
  if (!pod || pod.status?.phase !== "Running") {
    const scheduled = pod?.status?.conditions?.find((c) => c.type === "PodScheduled" && c.status === "False");
    const waiting = pod?.status?.containerStatuses?.find((c) => c.name === CONTAINER.fetchModel)?.state?.waiting;
    return pending(unbound ?? (scheduled?.message || (waiting ? `${waiting.reason}: ${waiting.message ?? ""}`.trim() : `waiting for the download pod of Job ${cache.jobName}`)));
  }
  const p = o.logTail === undefined ? undefined : lastProgress(o.logTail);
  if (p?.msg === "verifying") return {...base, phase: "Verifying", progress: "Verifying", reason: "Verifying", message: `hashing ${mib(p.bytes)} an earlier attempt left, before resuming`, bytes: p.bytes};
  const total = p?.total ?? undefined;
  const percent = p && total ? Math.floor((100 * p.bytes) / total) : undefined;
  return {
    ...base,
    phase: "Downloading",
    progress: percent !== undefined ? `Downloading ${percent}%` : "Downloading",
    reason: "Downloading",
    message: p ? `${mib(p.bytes)}${total ? ` of ${mib(total)}` : ""} at ${mib(p.bytes_per_second)}/s${p.eta_seconds !== null ? `, about ${p.eta_seconds} s left` : ""}` : "the download has started",
    ...(p ? {bytes: p.bytes, bytesPerSecond: p.bytes_per_second} : {}),
    ...(total ? {totalBytes: total} : {}),
    ...(p?.eta_seconds !== null && p?.eta_seconds !== undefined ? {etaSeconds: p.eta_seconds} : {})
  };
}

/** The download pod whose log tells the progress (the newest running one), if any. */
export function progressPod(pods: readonly V1Pod[]): V1Pod | undefined {
  const p = newest(pods);
  return p?.status?.phase === "Running" ? p : undefined;
}

function newest(pods: readonly V1Pod[]): V1Pod | undefined {
  return [...pods].sort((a, b) => String(b.metadata?.creationTimestamp ?? "").localeCompare(String(a.metadata?.creationTimestamp ?? "")))[0];
}

const mib = (bytes: number) => (bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(2)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`);
