import type {V1Container} from "@kubernetes/client-node";
import {CONTAINER, FETCH_ENV, IMAGE_ENTRY} from "../../../contract/index.js";
import type {LlmService} from "../api/llmservice.js";
import {inferenceImage, type DeploymentDefaults} from "./defaults.js";
import {MODEL_DIR} from "./model-source.js";
import {containerSecurity} from "./security.js";

/**
 * The download program's container, as the per-pod init container and the shared cache's
 * Job both run it: `url` (https:// or hf://) to `path` under the `model` volume at /models.
 */
export function downloadContainer(svc: LlmService, defaults: DeploymentDefaults, url: string, path: string): V1Container {
  const m = svc.spec.model;
  return {
    name: CONTAINER.fetchModel,
    image: inferenceImage(svc, defaults),
    ...(defaults.imagePullPolicy ? {imagePullPolicy: defaults.imagePullPolicy} : {}),
    command: ["node", IMAGE_ENTRY.fetchModel],
    env: [
      {name: FETCH_ENV.url, value: url},
      {name: FETCH_ENV.path, value: path},
      ...(m.sha256 ? [{name: FETCH_ENV.sha256, value: m.sha256}] : []),
      {name: FETCH_ENV.stallTimeoutSeconds, value: String(m.stallTimeoutSeconds)},
      ...(defaults.hfEndpoint ? [{name: FETCH_ENV.hfEndpoint, value: defaults.hfEndpoint}] : []),
      ...(m.tokenSecretRef ? [{name: FETCH_ENV.token, valueFrom: {secretKeyRef: {name: m.tokenSecretRef.name, key: m.tokenSecretRef.key}}}] : [])
    ],
    volumeMounts: [
      {name: "model", mountPath: MODEL_DIR},
      {name: "tmp", mountPath: "/tmp"}
    ],
    securityContext: containerSecurity
  };
}
