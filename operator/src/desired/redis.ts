import type {V1Deployment, V1NetworkPolicy, V1NetworkPolicyIngressRule, V1NetworkPolicyPeer, V1NetworkPolicySpec, V1Secret, V1Service} from "@kubernetes/client-node";
import type {LlmService} from "../api/llmservice.js";
import {CACHE_CLIENT_LABEL, MANAGED_BY, ownerReference} from "./meta.js";

/** Name of the per-namespace Redis objects (Deployment, Service, Secret, NetworkPolicy). */
export const REDIS_NAME = "paddock-redis";
export const REDIS_PORT = 6379;
/** Env var the inference pods read the managed Redis password into. */
export const REDIS_PASSWORD_ENV = "PADDOCK_REDIS_PASSWORD";
const REDIS_LABELS = {...MANAGED_BY, "app.kubernetes.io/name": "redis", "app.kubernetes.io/part-of": "paddock", "app.kubernetes.io/component": "cache"};
const REDIS_SELECTOR = {"app.kubernetes.io/name": "redis", "app.kubernetes.io/part-of": "paddock"};

/** Whether this service uses the namespace's operator-managed Redis. */
export const usesManagedRedis = (svc: LlmService): boolean => svc.spec.cache.enabled && svc.spec.cache.redis === undefined;

/** URL the inference pods use; the password comes from an earlier env var. */
export const managedRedisUrl = (namespace: string): string => `redis://:$(${REDIS_PASSWORD_ENV})@${REDIS_NAME}.${namespace}.svc:${REDIS_PORT}`;

/**
 * A NetworkPolicy as sent on the wire. The client's model calls the ingress rule's `from`
 * `_from` (its serializer renames it); this client sends plain JSON, so it must say `from`.
 */
export type WireNetworkPolicy = Omit<V1NetworkPolicy, "spec"> & {
  spec: Omit<V1NetworkPolicySpec, "ingress"> & {ingress: Array<Omit<V1NetworkPolicyIngressRule, "_from"> & {from: V1NetworkPolicyPeer[]}>};
};

export interface RedisDefaults {
  readonly image: string;
  /** Memory bound; Redis evicts least recently used entries past it. */
  readonly maxMemory: string;
}

/**
 * The shared Redis of a namespace, as this service wants it. Every service using it
 * applies the same objects with its own field manager and its own (non-controller)
 * owner reference, so the Redis is garbage-collected only when the last one is deleted.
 * The password Secret is not here: it is created once (see secret below), never applied.
 */
export function desiredRedis(svc: LlmService, defaults: RedisDefaults): [V1Deployment, V1Service, WireNetworkPolicy] {
  const meta = {name: REDIS_NAME, namespace: svc.metadata.namespace, labels: REDIS_LABELS, ownerReferences: [ownerReference(svc, false)]};
  return [
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: meta,
      spec: {
        replicas: 1,
        selector: {matchLabels: REDIS_SELECTOR},
        strategy: {type: "Recreate"},
        template: {
          metadata: {labels: REDIS_LABELS},
          spec: {
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: {runAsNonRoot: true, runAsUser: 999, runAsGroup: 999, fsGroup: 999, seccompProfile: {type: "RuntimeDefault"}},
            containers: [
              {
                name: "redis",
                image: defaults.image,
                // A cache: no persistence; evict LRU past the memory bound.
                args: ["--requirepass", "$(REDIS_PASSWORD)", "--save", "", "--appendonly", "no", "--maxmemory", defaults.maxMemory, "--maxmemory-policy", "allkeys-lru"],
                env: [{name: "REDIS_PASSWORD", valueFrom: {secretKeyRef: {name: REDIS_NAME, key: "password"}}}],
                ports: [{name: "redis", containerPort: REDIS_PORT, protocol: "TCP"}],
                readinessProbe: {tcpSocket: {port: "redis"}, periodSeconds: 5},
                livenessProbe: {tcpSocket: {port: "redis"}, periodSeconds: 10, failureThreshold: 6},
                resources: {requests: {cpu: "100m", memory: "64Mi"}},
                securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: ["ALL"]}},
                volumeMounts: [{name: "data", mountPath: "/data"}]
              }
            ],
            volumes: [{name: "data", emptyDir: {}}]
          }
        }
      }
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: meta,
      spec: {selector: REDIS_SELECTOR, ports: [{name: "redis", port: REDIS_PORT, targetPort: "redis", protocol: "TCP"}]}
    },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: meta,
      spec: {
        podSelector: {matchLabels: REDIS_SELECTOR},
        policyTypes: ["Ingress"],
        // Only inference pods that use this cache may connect.
        ingress: [{from: [{podSelector: {matchLabels: {[CACHE_CLIENT_LABEL]: "true"}}}], ports: [{port: REDIS_PORT, protocol: "TCP"}]}]
      }
    }
  ];
}

/** The password Secret, created once per namespace (applying it would rotate the password). */
export function redisSecret(svc: LlmService, password: string): V1Secret {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {name: REDIS_NAME, namespace: svc.metadata.namespace, labels: REDIS_LABELS, ownerReferences: [ownerReference(svc, false)]},
    type: "Opaque",
    stringData: {password}
  };
}
