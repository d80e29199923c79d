import type {V1PodDisruptionBudget, V1Service} from "@kubernetes/client-node";
import {DEFAULT_PORT, HTTP_PORT_NAME} from "../../../contract/index.js";
import type {LlmService} from "../api/llmservice.js";
import {commonLabels, ownerReference, selectorLabels} from "./meta.js";
import {replicasServiceName, routerSelector, routingEnabled} from "./router.js";

const meta = (svc: LlmService, name: string) => ({name, namespace: svc.metadata.namespace, labels: commonLabels(svc), ownerReferences: [ownerReference(svc)]});

/** What users call, `http://<name>.<namespace>.svc`: the routers when routing is on, else the model pods. */
export function desiredService(svc: LlmService): V1Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(svc, svc.metadata.name),
    spec: {
      type: svc.spec.service.type,
      selector: routingEnabled(svc) ? routerSelector(svc) : selectorLabels(svc),
      ports: [{name: HTTP_PORT_NAME, port: svc.spec.service.port, targetPort: DEFAULT_PORT, protocol: "TCP", appProtocol: "http"}]
    }
  };
}

/**
 * The model pods' own Service, headless: nobody calls it through a virtual IP; its
 * EndpointSlices tell the routers which pods are ready (and which terminate).
 */
export function desiredReplicasService(svc: LlmService): V1Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta(svc, replicasServiceName(svc)),
    spec: {clusterIP: "None", selector: selectorLabels(svc), ports: [{name: HTTP_PORT_NAME, port: DEFAULT_PORT, targetPort: DEFAULT_PORT, protocol: "TCP", appProtocol: "http"}]}
  };
}

/**
 * A PodDisruptionBudget when more than one replica is wanted: voluntary evictions (node
 * drains) then take one replica at a time. With one replica a PDB would block drains forever.
 */
export function desiredPdb(svc: LlmService, replicas: number): V1PodDisruptionBudget | undefined {
  if (replicas <= 1) return undefined;
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: {name: svc.metadata.name, namespace: svc.metadata.namespace, labels: commonLabels(svc), ownerReferences: [ownerReference(svc)]},
    spec: {maxUnavailable: 1, selector: {matchLabels: selectorLabels(svc)}}
  };
}
