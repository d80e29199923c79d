import type {V1Deployment} from "@kubernetes/client-node";
import type {LlmService, ModelStatus} from "../api/llmservice.js";
import type {DeploymentDefaults} from "../desired/defaults.js";
import {claimSize, desiredDownloadJob, desiredModelClaim, DOWNLOAD_INPUTS_ANNOTATION, downloadInputs, modelCache} from "../desired/model-cache.js";
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
  /** Objects this service no longer uses but others do: drop its owner reference. */
  readonly release: readonly KubeObject[];
  /** Objects only this service used and no longer does, and failed Jobs told something else. */
  readonly delete: readonly KubeObject[];
}

export interface ModelPlan {
  readonly writes: ModelWrites;
  readonly status: ModelStatus | undefined;
  readonly readiness: ModelReadiness;
  /** Whether the Deployment may be applied (the model file is there). */
  readonly deploymentAllowed: boolean;
}

const ref = (kind: CacheObject["kind"], name: string, namespace: string): KubeObject => ({apiVersion: kind === "Job" ? "batch/v1" : "v1", kind, metadata: {name, namespace}});

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
    (obj.ownerUids.length === 1 ? del : release).push(ref(obj.kind, obj.name, namespace));
  }

  if (!cache || !o) {
    const source = modelSource(svc);
    const readiness: ModelReadiness =
      source.kind === "https"
        ? pods.modelDownloadFailed
          ? {ready: false, failed: true, reason: "ModelDownloadFailed", message: pods.modelDownloadFailed}
          : {ready: true, failed: false, reason: "PerPodDownload", message: "each pod downloads the model into its own volume (spec.model.cache.mode: None)"}
        : {ready: true, failed: false, reason: "NoDownload", message: `the pods read the model from ${svc.spec.model.uri}`};
    return {writes: {create, adopt, release, delete: del}, status: undefined, readiness, deploymentAllowed: true};
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
  if (!o.job) {
    if (o.claim || !cache.managedClaim) create.push(desiredDownloadJob(svc, cache, defaults));
  } else if (jobFailed && o.job.metadata?.annotations?.[DOWNLOAD_INPUTS_ANNOTATION] !== inputs) {
    // The spec changed since that Job failed (a token added, a digest fixed): try again.
    del.push(ref("Job", cache.jobName, namespace));
  } else if (!owned(find("Job", cache.jobName))) adopt.push(ownerOnly("batch/v1", "Job", cache.jobName, svc));

  const status = modelStatus(cache, o);
  const readiness: ModelReadiness = {ready: status.phase === "Ready", failed: status.phase === "Failed", reason: status.reason ?? status.phase, message: status.message ?? ""};
  return {writes: {create, adopt, release, delete: del}, status, readiness, deploymentAllowed: readiness.ready};
}

/** An object carrying just this service's owner reference: what `adopt` merges in. */
function ownerOnly(apiVersion: string, kind: string, name: string, svc: LlmService): KubeObject {
  return {apiVersion, kind, metadata: {name, namespace: svc.metadata.namespace, ownerReferences: [ownerReference(svc, false)]}};
}
