import type {V1Deployment, V1EnvVar, V1PodDisruptionBudget, V1Role, V1RoleBinding, V1ServiceAccount} from "@kubernetes/client-node";
import {maxRequestBytes} from "./request-size.js";
import {CONTAINER, DEFAULT_PORT, HTTP_PORT_NAME, OPERATOR_IMAGE_ENTRY, PATHS, ROUTER_ENV} from "../../../contract/index.js";
import {containerSecurity} from "./security.js";
import type {LlmService} from "../api/llmservice.js";
import {commonLabels, MANAGED_BY, modelName, ownerReference} from "./meta.js";

/** Label selecting one LlmService's router pods (distinct from the model pods' SERVICE_LABEL). */
export const ROUTER_LABEL = "llm.paddock.dev/router";

/** Operator-wide settings of the routers. */
export interface RouterDefaults {
  /** The image with the router's entry point: the operator's own. */
  readonly image: string;
  readonly imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
}

export const routerName = (svc: LlmService) => `${svc.metadata.name}-router`;
/** The model pods' own Service: the router discovers replicas from its EndpointSlices. */
export const replicasServiceName = (svc: LlmService) => `${svc.metadata.name}-replicas`;
/** The Lease routers annotate with their held requests (the wake-up signal). */
export const demandLeaseName = (svc: LlmService) => demandLeaseOf(svc.metadata.name);
export const demandLeaseOf = (service: string) => `${service}-demand`;
export const routingEnabled = (svc: LlmService) => svc.spec.routing.enabled;

export const routerSelector = (svc: LlmService): Record<string, string> => ({[ROUTER_LABEL]: svc.metadata.name});
const meta = (svc: LlmService, name: string) => ({name, namespace: svc.metadata.namespace, labels: commonLabels(svc), ownerReferences: [ownerReference(svc)]});

/** Seconds a stopping router keeps answering while endpoints drop it. */
const PRESTOP_SECONDS = 5;

/**
 * The router Deployment: `spec.routing.replicas` small pods (default 2), spread over
 * nodes, that hold no state worth keeping, so a rollout surges one new pod before an old
 * one goes. It runs the operator image's router entry point under its own service account.
 */
export function desiredRouterDeployment(svc: LlmService, defaults: RouterDefaults): V1Deployment {
  const r = svc.spec.routing;
  const env: V1EnvVar[] = [
    {name: ROUTER_ENV.namespace, valueFrom: {fieldRef: {fieldPath: "metadata.namespace"}}},
    {name: ROUTER_ENV.podName, valueFrom: {fieldRef: {fieldPath: "metadata.name"}}},
    {name: ROUTER_ENV.service, value: svc.metadata.name},
    {name: ROUTER_ENV.endpointsService, value: replicasServiceName(svc)},
    {name: ROUTER_ENV.modelName, value: modelName(svc)},
    {name: ROUTER_ENV.port, value: String(DEFAULT_PORT)},
    {name: ROUTER_ENV.strategy, value: r.strategy},
    {name: ROUTER_ENV.loadFactor, value: String(r.loadFactor)},
    {name: ROUTER_ENV.maxHeldRequests, value: String(r.maxHeldRequests)},
    {name: ROUTER_ENV.holdTimeoutSeconds, value: String(r.holdTimeoutSeconds)},
    {name: ROUTER_ENV.requestTimeoutSeconds, value: String(svc.spec.engine.requestTimeoutSeconds + r.holdTimeoutSeconds)},
    {name: ROUTER_ENV.demandLease, value: demandLeaseName(svc)},
    // The same cap as the servers': a prompt that fits a slot passes the router too.
    {name: ROUTER_ENV.maxRequestBytes, value: String(maxRequestBytes(svc.spec.engine.contextSize))}
  ];
  const probe = (path: string) => ({httpGet: {path, port: HTTP_PORT_NAME}, periodSeconds: 5, failureThreshold: 3, timeoutSeconds: 2});
  const labels = {...MANAGED_BY, "app.kubernetes.io/name": "llmservice-router", "app.kubernetes.io/instance": svc.metadata.name, "app.kubernetes.io/component": "router", "app.kubernetes.io/part-of": "paddock", ...routerSelector(svc)};
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta(svc, routerName(svc)),
    spec: {
      replicas: r.replicas,
      selector: {matchLabels: routerSelector(svc)},
      strategy: {type: "RollingUpdate", rollingUpdate: {maxSurge: 1, maxUnavailable: 0}},
      revisionHistoryLimit: 3,
      template: {
        metadata: {labels, annotations: {"prometheus.io/scrape": "true", "prometheus.io/port": String(DEFAULT_PORT), "prometheus.io/path": PATHS.metrics}},
        spec: {
          serviceAccountName: routerName(svc),
          enableServiceLinks: false,
          securityContext: {runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: {type: "RuntimeDefault"}},
          terminationGracePeriodSeconds: PRESTOP_SECONDS + 30,
          topologySpreadConstraints: [{maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway", labelSelector: {matchLabels: routerSelector(svc)}}],
          containers: [
            {
              name: CONTAINER.router,
              image: defaults.image,
              ...(defaults.imagePullPolicy ? {imagePullPolicy: defaults.imagePullPolicy} : {}),
              command: ["node", OPERATOR_IMAGE_ENTRY.router],
              ports: [{name: HTTP_PORT_NAME, containerPort: DEFAULT_PORT, protocol: "TCP"}],
              env,
              resources: {requests: {cpu: "50m", memory: "64Mi"}, limits: {memory: "256Mi"}},
              readinessProbe: probe(PATHS.readyz),
              livenessProbe: probe(PATHS.healthz),
              lifecycle: {preStop: {sleep: {seconds: PRESTOP_SECONDS}}},
              securityContext: containerSecurity
            }
          ]
        }
      }
    }
  };
}

/**
 * The routers' identity and rights, and the Lease they signal demand on: read the
 * EndpointSlices of this namespace, and annotate this one Lease. Nothing else.
 */
export function desiredRouterAccess(svc: LlmService): [V1ServiceAccount, V1Role, V1RoleBinding, {apiVersion: string; kind: string; metadata: ReturnType<typeof meta>; spec: object}] {
  const name = routerName(svc);
  return [
    {apiVersion: "v1", kind: "ServiceAccount", metadata: meta(svc, name), automountServiceAccountToken: true},
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: meta(svc, name),
      rules: [
        {apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: ["get", "list", "watch"]},
        {apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: [demandLeaseName(svc)], verbs: ["get", "patch"]}
      ]
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: meta(svc, name),
      roleRef: {apiGroup: "rbac.authorization.k8s.io", kind: "Role", name},
      subjects: [{kind: "ServiceAccount", name, namespace: svc.metadata.namespace}]
    },
    {apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: meta(svc, demandLeaseName(svc)), spec: {}}
  ];
}

/** Evictions take one router at a time while there are several. */
export function desiredRouterPdb(svc: LlmService): V1PodDisruptionBudget | undefined {
  if (!routingEnabled(svc) || svc.spec.routing.replicas <= 1) return undefined;
  return {apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: meta(svc, routerName(svc)), spec: {maxUnavailable: 1, selector: {matchLabels: routerSelector(svc)}}};
}
