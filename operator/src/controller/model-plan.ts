import type {V1Deployment} from "@kubernetes/client-node";
import type {LlmService, ModelStatus} from "../api/llmservice.js";
import type {DeploymentDefaults} from "../desired/defaults.js";
import {claimSize, CLAIM_UID_ANNOTATION, desiredDownloadJob, desiredModelClaim, DOWNLOAD_INPUTS_ANNOTATION, downloadInputs, modelCache} from "../desired/model-cache.js";
import {ownerReference} from "../desired/meta.js";
import {modelSource} from "../desired/model-source.js";
import type {KubeObject} from "../kube/kube-client.js";
import {modelStatus, type ModelCacheObservation} from "../status/model.js";
import type {ModelReadiness, PodProblems} from "../status/observe.js";

/** A claim or Job of the model cache in the service's namespace, as the watch cache holds it. */
export interface CacheObject {
  readonly kind: "PersistentVolumeClaim" | "Job";
  readonly name: string;
  readonly ownerUids: readonly string[];
  /** As read: releasing or deleting the object is conditional on it (see ModelWrites). */
  readonly resourceVersion?: string;
}

export interface ModelObservation extends ModelCacheObservation {
  /** Every model-cache claim and Job in the namespace. */
  readonly objects: readonly CacheObject[];
  /** The model's length (for sizing the claim), when the operator learned it. */
  readonly sizeBytes: number | undefined;
}

/** Writes to the shared cache's objects, none of them by apply: they are shared. */
export interface ModelWrites {
  /** Objects that do not exist yet (a 409 means another service was first: fine). */
  readonly create: readonly KubeObject[];
  /** Existing objects that need this service's owner reference (strategic merge patch). */
  readonly adopt: readonly KubeObject[];
  /**
   * Objects this service no longer uses but others do: drop its owner reference. Each
   * carries the resourceVersion it was read at, and the write is conditional on it: two
   * services letting go at once from reads that each still show the other would leave the
   * object with no owner, never collected.
   */
  readonly release: readonly KubeObject[];
  /** Objects only this service used and no longer does, and stale Jobs; conditional likewise (another service may have adopted it since). */
  readonly delete: readonly KubeObject[];
}

export interface ModelPlan {
  readonly writes: ModelWrites;
  readonly status: ModelStatus | undefined;
  readonly readiness: ModelReadiness;
  /** Whether the Deployment may be applied (the model file is there). */
  readonly deploymentAllowed: boolean;
}

const ref = (kind: CacheObject["kind"], name: string, namespace: string, resourceVersion?: string): KubeObject => ({apiVersion: kind === "Job" ? "batch/v1" : "v1", kind, metadata: {name, namespace, ...(resourceVersion ? {resourceVersion} : {})}});

/**
 * The shared model cache's part of a reconcile: which claim and Job to create or share,
 * which of this service's old ones to let go (a claim only once the Deployment no longer
 * mounts it), `status.model`, and whether the replicas may start. Pure.
 */
export function planModel(svc: LlmService, o: ModelObservation | undefined, deployment: V1Deployment | undefined, pods: PodProblems, defaults: DeploymentDefaults): ModelPlan {
  const {namespace, uid} = svc.metadata;
  const cache = modelCache(svc);
  const create: KubeObject[] = [];
  const adopt: KubeObject[] = [];
  const release: KubeObject[] = [];
  const del: KubeObject[] = [];

  // Let go of what this service owned for another model, except the claim its Deployment still mounts.
  const mounted = new Set((deployment?.spec?.template?.spec?.volumes ?? []).flatMap((v) => (v.persistentVolumeClaim ? [v.persistentVolumeClaim.claimName] : [])));
  for (const obj of o?.objects ?? []) {
    if (!obj.ownerUids.includes(uid)) continue;
    const current = cache && (obj.kind === "Job" ? obj.name === cache.jobName : obj.name === cache.claimName);
    if (current || (obj.kind === "PersistentVolumeClaim" && mounted.has(obj.name))) continue;
    (obj.ownerUids.length === 1 ? del : release).push(ref(obj.kind, obj.name, namespace, obj.resourceVersion));
  }

  if (!cache || !o) {
    const source = modelSource(svc);
    const readiness: ModelReadiness =
      source.kind === "https"
        ? pods.modelDownloadFailed
          ? {ready: false, failed: true, reason: "ModelDownloadFailed", message: pods.modelDownloadFailed}
          : {ready: true, failed: false, reason: "PerPodDownload", message: "each pod downloads the model into its own volume (spec.model.cache.mode: None)"}
        : {ready: true, failed: false, reason: "NoDownload", message: `the pods read the model from ${svc.spec.model.uri}`};
    // Said in `kubectl get llms` too (the MODEL column was empty for these).
    const status: ModelStatus | undefined = readiness.failed
      ? {phase: "Failed", progress: `Failed: ${readiness.reason}`, reason: readiness.reason, message: readiness.message}
      : {phase: "Ready", progress: source.kind === "https" ? "PerPod" : "Local", reason: readiness.reason, message: readiness.message};
    return {writes: {create, adopt, release, delete: del}, status, readiness, deploymentAllowed: true};
  }

  const owned = (obj: CacheObject | undefined) => obj?.ownerUids.includes(uid) ?? false;
  const find = (kind: CacheObject["kind"], name: string) => o.objects.find((x) => x.kind === kind && x.name === name);
  if (cache.managedClaim) {
    const size = svc.spec.model.cache.size ?? (o.sizeBytes !== undefined ? claimSize(o.sizeBytes) : undefined);
    // Without a size (the host would not say), status says why: o.sizeError.
    if (!o.claim) {
      if (size) create.push(desiredModelClaim(svc, cache, size));
    } else if (!owned(find("PersistentVolumeClaim", cache.claimName))) adopt.push(ownerOnly("v1", "PersistentVolumeClaim", cache.claimName, svc));
  }
  const inputs = downloadInputs(svc, defaults);
  const jobFailed = o.job?.status?.conditions?.some((c) => c.type === "Failed" && c.status === "True") ?? false;
  const claimUid = o.claim?.metadata?.uid;
  const filledUid = o.job?.metadata?.annotations?.[CLAIM_UID_ANNOTATION];
  // The Job filled another claim of this name (it was deleted and made again, empty): what it
  // says is about a volume that is gone.
  const staleJob = o.job !== undefined && claimUid !== undefined && filledUid !== undefined && filledUid !== claimUid;
  if (!o.job) {
    if (o.claim || !cache.managedClaim) create.push(desiredDownloadJob(svc, cache, defaults, claimUid));
  } else if (staleJob || (jobFailed && o.job.metadata?.annotations?.[DOWNLOAD_INPUTS_ANNOTATION] !== inputs)) {
    // A new claim, or the spec changed since that Job failed (a token added, a digest fixed): download again.
    del.push(ref("Job", cache.jobName, namespace, o.job.metadata?.resourceVersion));
  } else if (!owned(find("Job", cache.jobName))) adopt.push(ownerOnly("batch/v1", "Job", cache.jobName, svc));

  const status = staleJob ? {claimName: cache.claimName, path: cache.subPath, job: cache.jobName, phase: "Pending" as const, progress: "Pending", reason: "Pending", message: `PersistentVolumeClaim ${cache.claimName} was made again since Job ${cache.jobName} filled it: downloading again`} : modelStatus(cache, o);
  const readiness: ModelReadiness = {ready: status.phase === "Ready", failed: status.phase === "Failed", reason: status.reason ?? status.phase, message: status.message ?? ""};
  return {writes: {create, adopt, release, delete: del}, status, readiness, deploymentAllowed: readiness.ready};
}

/** An object carrying just this service's owner reference: what `adopt` merges in. */
function ownerOnly(apiVersion: string, kind: string, name: string, svc: LlmService): KubeObject {
  return {apiVersion, kind, metadata: {name, namespace: svc.metadata.namespace, ownerReferences: [ownerReference(svc, false)]}};
}
