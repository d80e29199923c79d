import {createHash} from "node:crypto";
import {posix} from "node:path";
import type {V1Container, V1Job, V1PersistentVolumeClaim, V1Toleration} from "@kubernetes/client-node";
import type {LlmService} from "../api/llmservice.js";
import {inferenceImage, type DeploymentDefaults} from "./defaults.js";
import {CONTAINER} from "../../../contract/index.js";
import {downloadContainer} from "./download-container.js";
import {inferencePodSecurity} from "./security.js";
import {MANAGED_BY, ownerReference} from "./meta.js";
import {MODEL_DIR, modelSource} from "./model-source.js";

/** Label on the shared model claims and download Jobs: the model's cache key. */
export const MODEL_CACHE_LABEL = "llm.paddock.dev/model-cache";
/** Annotation on a download Job: the hash of what it was told (source, token, image...). */
export const DOWNLOAD_INPUTS_ANNOTATION = "llm.paddock.dev/download-inputs";
/** Annotation on a download Job: the uid of the claim it filled (a claim deleted and made again is empty). */
export const CLAIM_UID_ANNOTATION = "llm.paddock.dev/claim-uid";
/** Headroom over the model's length in a claim the operator sizes. */
export const CLAIM_HEADROOM = {factor: 1.1, bytes: 128 * 1024 * 1024};

/** Where a service's model lives in the shared cache; undefined when it does not use one. */
export interface ModelCache {
  /** sha256 of the model's identity (its digest and file name, else its URI) cut to 16 hex digits: names and labels. */
  readonly key: string;
  readonly claimName: string;
  /** Whether the operator creates (and garbage-collects) the claim. */
  readonly managedClaim: boolean;
  readonly jobName: string;
  /** The model file inside the claim: `<key>/<file name>`. */
  readonly subPath: string;
}

/**
 * The service's shared model cache, from its spec: https:// and hf:// models with
 * `spec.model.cache.mode: Shared`. Keyed by the model's digest and file name when the spec
 * gives a digest (the Job writes one file name: two services naming the same bytes under
 * two names each need theirs), else by the URI (revision included): services naming the
 * same model share one file, and a changed model gets a new one. Pure.
 */
export function modelCache(svc: LlmService): ModelCache | undefined {
  const source = modelSource(svc);
  const cache = svc.spec.model.cache;
  if (source.kind !== "https" || cache.mode !== "Shared") return undefined;
  const identity = svc.spec.model.sha256 ? `${svc.spec.model.sha256}\n${source.fileName}` : svc.spec.model.uri;
  const key = createHash("sha256").update(identity).digest("hex").slice(0, 16);
  const name = `paddock-model-${key}`;
  return {key, claimName: cache.claimName ?? name, managedClaim: cache.claimName === undefined, jobName: name, subPath: posix.join(key, source.fileName)};
}

/** The claim size for a model of `bytes` bytes (sum of its parts), in Mi. Pure. */
export function claimSize(bytes: number): string {
  return `${Math.ceil((bytes * CLAIM_HEADROOM.factor + CLAIM_HEADROOM.bytes) / (1024 * 1024))}Mi`;
}

const cacheLabels = (cache: ModelCache) => ({...MANAGED_BY, "app.kubernetes.io/name": "model-cache", "app.kubernetes.io/part-of": "paddock", [MODEL_CACHE_LABEL]: cache.key});

/** The claim the operator creates, owned (not controlled) by each service using it. */
export function desiredModelClaim(svc: LlmService, cache: ModelCache, size: string): V1PersistentVolumeClaim {
  const spec = svc.spec.model.cache;
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: {name: cache.claimName, namespace: svc.metadata.namespace, labels: cacheLabels(cache), ownerReferences: [ownerReference(svc, false)]},
    spec: {
      accessModes: [spec.accessMode],
      resources: {requests: {storage: size}},
      ...(spec.storageClassName ? {storageClassName: spec.storageClassName} : {})
    }
  };
}

/** What the download was told; a failed Job told something else is replaced. */
export function downloadInputs(svc: LlmService, defaults: DeploymentDefaults): string {
  const m = svc.spec.model;
  return createHash("sha256")
    .update(JSON.stringify([m.uri, m.sha256, m.tokenSecretRef, m.stallTimeoutSeconds, defaults.hfEndpoint, inferenceImage(svc, defaults)]))
    .digest("hex")
    .slice(0, 16);
}

/**
 * The Job that fills the cache: the same download program as the per-pod init container,
 * writing `<key>/<file>` into the claim and renaming it into place only once verified, so a
 * replica never sees a partial file. A failed attempt's `.part` stays on the volume and the
 * next pod resumes it. No API access: the operator reads its progress through `pods/log`.
 */
export function desiredDownloadJob(svc: LlmService, cache: ModelCache, defaults: DeploymentDefaults, claimUid?: string): V1Job {
  const source = modelSource(svc);
  if (source.kind !== "https") throw new Error("only https:// and hf:// models are downloaded");
  const container: V1Container = {
    ...downloadContainer(svc, defaults, source.url, posix.join(MODEL_DIR, cache.subPath)),
    resources: {requests: {cpu: "100m", memory: "128Mi"}, limits: {memory: "512Mi"}},
    terminationMessagePolicy: "FallbackToLogsOnError"
  };
  return {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: {
      name: cache.jobName,
      namespace: svc.metadata.namespace,
      labels: cacheLabels(cache),
      annotations: {[DOWNLOAD_INPUTS_ANNOTATION]: downloadInputs(svc, defaults), ...(claimUid ? {[CLAIM_UID_ANNOTATION]: claimUid} : {})},
      ownerReferences: [ownerReference(svc, false)]
    },
    spec: {
      // The program retries and resumes by itself; a pod failure is a verdict (wrong digest,
      // refused token, no space), except when the pod was evicted or its node went away.
      backoffLimit: 3,
      podFailurePolicy: {
        rules: [
          {action: "Ignore", onPodConditions: [{type: "DisruptionTarget", status: "True"}]},
          {action: "FailJob", onExitCodes: {containerName: CONTAINER.fetchModel, operator: "In", values: [1]}}
        ]
      },
      template: {
        metadata: {labels: cacheLabels(cache)},
        spec: {
          restartPolicy: "Never",
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: inferencePodSecurity,
          containers: [container],
          volumes: [
            {name: "model", persistentVolumeClaim: {claimName: cache.claimName}},
            {name: "tmp", emptyDir: {}}
          ],
          ...(svc.spec.scheduling.tolerations ? {tolerations: svc.spec.scheduling.tolerations as V1Toleration[]} : {}),
          ...(svc.spec.scheduling.nodeSelector ? {nodeSelector: svc.spec.scheduling.nodeSelector} : {})
        }
      }
    }
  };
}
