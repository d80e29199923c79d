import {CONTAINER, DEFAULT_PORT, ENV, HTTP_PORT_NAME, PATHS} from "../../../contract/index.js";
import type {V1Affinity, V1Container, V1Deployment, V1EnvVar, V1Probe, V1Toleration, V1Volume, V1VolumeMount} from "@kubernetes/client-node";
import type {LlmService} from "../api/llmservice.js";
import {inferenceImage, type DeploymentDefaults} from "./defaults.js";
import {CACHE_CLIENT_LABEL, commonLabels, modelName, ownerReference, selectorLabels} from "./meta.js";
import {downloadContainer} from "./download-container.js";
import {containerSecurity, inferencePodSecurity} from "./security.js";
import {quantityBytes} from "./quantity.js";
import {maxRequestBytes} from "./request-size.js";
import {modelCache} from "./model-cache.js";
import {MODEL_DIR, modelPathInPod, modelSource} from "./model-source.js";
import {managedRedisUrl, REDIS_PASSWORD_ENV, usesManagedRedis} from "./redis.js";

/** Operator-wide settings the desired Deployment depends on. */
/** Where the API keys Secret is mounted. */
const API_KEYS_DIR = "/etc/paddock/api-keys";
/** Seconds the preStop hook waits so endpoints drop the pod before it starts draining. */
const PRESTOP_SECONDS = 5;
/** Startup budget: a 70B model from network storage can take many minutes to load. */
const STARTUP_BUDGET_SECONDS = 30 * 60;

/**
 * The Deployment that runs an LlmService's inference servers. Pure: the same service
 * always yields the same object. `spec.replicas` is deliberately absent: replica counts
 * go through the scale subresource (see controller/plan.ts), so applying this never resets them.
 */
export function desiredDeployment(svc: LlmService, defaults: DeploymentDefaults): V1Deployment {
  const {spec} = svc;
  const source = modelSource(svc);
  const volumes: V1Volume[] = [{name: "tmp", emptyDir: {}}];
  const mounts: V1VolumeMount[] = [{name: "tmp", mountPath: "/tmp"}];
  const initContainers: V1Container[] = [];
  const image = inferenceImage(svc, defaults);
  const pullPolicy = defaults.imagePullPolicy ? {imagePullPolicy: defaults.imagePullPolicy} : {};
  const cache = modelCache(svc);
  let modelPath = modelPathInPod(source);

  if (cache) {
    // Filled once by the download Job (model-cache.ts); the operator applies this only once
    // the file is there and verified.
    volumes.push({name: "model", persistentVolumeClaim: {claimName: cache.claimName, readOnly: true}});
    mounts.push({name: "model", mountPath: MODEL_DIR, readOnly: true});
    modelPath = `${MODEL_DIR}/${cache.subPath}`;
  } else if (source.kind === "https") {
    volumes.push({name: "model", emptyDir: {}});
    mounts.push({name: "model", mountPath: MODEL_DIR, readOnly: true});
    initContainers.push(downloadContainer(svc, defaults, source.url, modelPathInPod(source)));
  } else if (source.kind === "pvc") {
    volumes.push({name: "model", persistentVolumeClaim: {claimName: source.claim, readOnly: true}});
    mounts.push({name: "model", mountPath: MODEL_DIR, readOnly: true});
  } else if (source.hostPath) {
    const dir = source.path.slice(0, source.path.lastIndexOf("/")) || "/";
    volumes.push({name: "model", hostPath: {path: dir, type: "Directory"}});
    mounts.push({name: "model", mountPath: dir, readOnly: true});
  }

  const env: V1EnvVar[] = [
    {name: ENV.modelPath, value: modelPath},
    {name: ENV.modelName, value: modelName(svc)},
    {name: ENV.port, value: String(DEFAULT_PORT)},
    {name: ENV.parallelSlots, value: String(spec.engine.parallelSlots)},
    {name: ENV.contextSize, value: String(spec.engine.contextSize)},
    {name: ENV.maxRequestBytes, value: String(maxRequestBytes(spec.engine.contextSize))},
    {name: ENV.maxQueue, value: String(spec.engine.maxQueue)},
    {name: ENV.gpu, value: spec.resources.gpus > 0 ? "auto" : "off"},
    // GPUs asked for must be used: the server exits (GPUUnavailable) rather than run ~50x slower on the CPU.
    ...(spec.resources.gpus > 0 ? [{name: ENV.gpuRequired, value: "true"}] : []),
    {name: ENV.gpuLayers, value: String(spec.engine.gpuLayers)},
    ...(spec.engine.threads ? [{name: ENV.threads, value: String(spec.engine.threads)}] : []),
    {name: ENV.requestTimeoutSeconds, value: String(spec.engine.requestTimeoutSeconds)},
    {name: ENV.shutdownGraceSeconds, value: String(spec.engine.shutdownGraceSeconds)},
    {name: ENV.promptCacheBytes, value: String(quantityBytes(spec.engine.promptCacheSize))},
    ...(spec.model.sha256 ? [{name: ENV.modelSha256, value: spec.model.sha256}] : []),
    ...cacheEnv(svc)
  ];
  const keys = spec.auth.apiKeySecretRef;
  if (keys) {
    volumes.push({name: "api-keys", secret: {secretName: keys.name, items: [{key: keys.key, path: "keys"}]}});
    mounts.push({name: "api-keys", mountPath: API_KEYS_DIR, readOnly: true});
    env.push({name: ENV.apiKeysFile, value: `${API_KEYS_DIR}/keys`});
  }

  const limits: Record<string, string> = {};
  const requests: Record<string, string> = {};
  if (spec.resources.gpus > 0) limits[spec.resources.gpuResourceName] = String(spec.resources.gpus);
  if (spec.resources.memory) limits["memory"] = requests["memory"] = spec.resources.memory;
  if (spec.resources.cpu) requests["cpu"] = spec.resources.cpu;

  const probe = (path: string, periodSeconds: number, failureThreshold: number): V1Probe => ({
    httpGet: {path, port: HTTP_PORT_NAME},
    periodSeconds,
    failureThreshold,
    timeoutSeconds: 5
  });
  const podLabels = {...commonLabels(svc), ...(usesManagedRedis(svc) ? {[CACHE_CLIENT_LABEL]: "true"} : {})};
  const scheduling = spec.scheduling;

  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: svc.metadata.name,
      namespace: svc.metadata.namespace,
      labels: commonLabels(svc),
      ownerReferences: [ownerReference(svc)]
    },
    spec: {
      selector: {matchLabels: selectorLabels(svc)},
      // No surge: a rollout never needs a spare GPU, so it cannot deadlock on a full cluster.
      strategy: {type: "RollingUpdate", rollingUpdate: {maxSurge: 0, maxUnavailable: 1}},
      revisionHistoryLimit: 3,
      progressDeadlineSeconds: STARTUP_BUDGET_SECONDS + 600,
      template: {
        metadata: {
          labels: podLabels,
          annotations: {"prometheus.io/scrape": "true", "prometheus.io/port": String(DEFAULT_PORT), "prometheus.io/path": PATHS.metrics}
        },
        spec: {
          // The server needs no Kubernetes API access: no token in the pod.
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: inferencePodSecurity,
          terminationGracePeriodSeconds: PRESTOP_SECONDS + spec.engine.shutdownGraceSeconds + 5,
          ...(initContainers.length > 0 ? {initContainers} : {}),
          containers: [
            {
              name: CONTAINER.server,
              image,
              ...pullPolicy,
              ports: [{name: HTTP_PORT_NAME, containerPort: DEFAULT_PORT, protocol: "TCP"}],
              env,
              resources: {...(Object.keys(limits).length ? {limits} : {}), ...(Object.keys(requests).length ? {requests} : {})},
              startupProbe: probe(PATHS.readyz, 10, STARTUP_BUDGET_SECONDS / 10),
              readinessProbe: probe(PATHS.readyz, 5, 2),
              livenessProbe: probe(PATHS.healthz, 10, 3),
              // Endpoints drop a terminating pod asynchronously; wait before the server stops accepting.
              lifecycle: {preStop: {sleep: {seconds: PRESTOP_SECONDS}}},
              // Why it stopped (e.g. GPUUnavailable), for the operator's conditions.
              terminationMessagePolicy: "FallbackToLogsOnError",
              securityContext: containerSecurity,
              volumeMounts: mounts
            }
          ],
          volumes,
          ...(scheduling.nodeSelector ? {nodeSelector: scheduling.nodeSelector} : {}),
          // The CRD validates both against the Kubernetes schemas (see api/scheduling.ts).
          ...(scheduling.tolerations ? {tolerations: scheduling.tolerations as V1Toleration[]} : {}),
          ...(scheduling.affinity ? {affinity: scheduling.affinity as V1Affinity} : {}),
          ...(scheduling.priorityClassName ? {priorityClassName: scheduling.priorityClassName} : {})
        }
      }
    }
  };
}

/** The cache part of the environment contract (see the cache issue's variables). */
function cacheEnv(svc: LlmService): V1EnvVar[] {
  const cache = svc.spec.cache;
  if (!cache.enabled) return [{name: ENV.cacheMode, value: "off"}];
  const env: V1EnvVar[] = [
    {name: ENV.cacheMode, value: cache.mode},
    {name: ENV.cacheTtlSeconds, value: String(cache.ttlSeconds)},
    // One namespace per service: two services never read each other's entries.
    {name: ENV.cacheNamespace, value: `${svc.metadata.namespace}.${svc.metadata.name}`}
  ];
  if (cache.redis?.url) env.push({name: ENV.redisUrl, value: cache.redis.url});
  else if (cache.redis?.secretRef) env.push({name: ENV.redisUrl, valueFrom: {secretKeyRef: {name: cache.redis.secretRef.name, key: cache.redis.secretRef.key}}});
  else {
    // $(VAR) expands only variables defined earlier in the list: the password comes first.
    env.push({name: REDIS_PASSWORD_ENV, valueFrom: {secretKeyRef: {name: "paddock-redis", key: "password"}}});
    env.push({name: ENV.redisUrl, value: managedRedisUrl(svc.metadata.namespace)});
  }
  return env;
}
