import {API_VERSION, KIND, type LlmService} from "../api/llmservice.js";

/** Label on every object an LlmService owns; watches map objects back to their service with it. */
export const SERVICE_LABEL = "llm.paddock.dev/service";
/** Pods allowed through the managed Redis' NetworkPolicy. */
export const CACHE_CLIENT_LABEL = "llm.paddock.dev/cache-client";
export const MANAGED_BY = {"app.kubernetes.io/managed-by": "paddock"} as const;

/** Labels that select one LlmService's pods. Never change them: Deployment selectors are immutable. */
export const selectorLabels = (svc: LlmService): Record<string, string> => ({[SERVICE_LABEL]: svc.metadata.name});

export const commonLabels = (svc: LlmService): Record<string, string> => ({
  ...MANAGED_BY,
  "app.kubernetes.io/name": "llmservice",
  "app.kubernetes.io/instance": svc.metadata.name,
  "app.kubernetes.io/part-of": "paddock",
  ...selectorLabels(svc)
});

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/**
 * Owner reference to the LlmService: deleting it garbage-collects what it owns. A shared
 * object (the namespace's Redis) gets one non-controller reference per service using it.
 */
export function ownerReference(svc: LlmService, controller = true): OwnerReference {
  return {apiVersion: API_VERSION, kind: KIND, name: svc.metadata.name, uid: svc.metadata.uid, controller, blockOwnerDeletion: true};
}

/** The served model id: spec.model.name, or the object's name. */
export const modelName = (svc: LlmService): string => svc.spec.model.name ?? svc.metadata.name;

/** In-cluster URL of the service's OpenAI-compatible API. */
export function endpoint(svc: LlmService): string {
  const port = svc.spec.service.port;
  return `http://${svc.metadata.name}.${svc.metadata.namespace}.svc${port === 80 ? "" : `:${port}`}`;
}
