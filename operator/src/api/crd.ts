import {z} from "zod";
import {API_VERSION, GROUP, KIND, PLURAL, specSchema, statusSchema, VERSION} from "./llmservice.js";

type Json = Record<string, unknown>;

/**
 * The LlmService CustomResourceDefinition, generated from the zod schemas: status and
 * scale subresources, printer columns, and a structural openAPIV3Schema whose defaults
 * and CEL rules come from the schema itself.
 */
export function llmServiceCrd(): Json {
  const spec = structural(z.toJSONSchema(specSchema, {io: "input", target: "openapi-3.0"}) as Json);
  const status = structural(z.toJSONSchema(statusSchema, {io: "output", target: "openapi-3.0"}) as Json);
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {name: `${PLURAL}.${GROUP}`, labels: {"app.kubernetes.io/part-of": "paddock"}},
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: {plural: PLURAL, singular: "llmservice", kind: KIND, listKind: `${KIND}List`, shortNames: ["llms"], categories: ["paddock"]},
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: {
            status: {},
            scale: {specReplicasPath: ".spec.replicas.desired", statusReplicasPath: ".status.replicas", labelSelectorPath: ".status.selector"}
          },
          additionalPrinterColumns: [
            {name: "URI", type: "string", jsonPath: ".spec.model.uri", priority: 1},
            {name: "Ready", type: "integer", jsonPath: ".status.readyReplicas"},
            {name: "Desired", type: "integer", jsonPath: ".status.desiredReplicas"},
            {name: "Status", type: "string", jsonPath: ".status.conditions[?(@.type==\"Ready\")].reason"},
            {name: "Model", type: "string", jsonPath: ".status.model.progress"},
            {name: "Endpoint", type: "string", jsonPath: ".status.endpoint"},
            {name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp"}
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: `${KIND} (${API_VERSION}) serves one GGUF model behind an OpenAI-compatible API: GPU-scheduled replicas, a shared response cache and autoscaling.`,
              required: ["spec"],
              properties: {
                apiVersion: {type: "string"},
                kind: {type: "string"},
                metadata: {type: "object"},
                spec,
                status
              }
            }
          }
        }
      ]
    }
  };
}

const SAFE = Number.MAX_SAFE_INTEGER;

/**
 * Rewrites JSON Schema into Kubernetes' structural dialect: no `additionalProperties: false`
 * (unknown fields are rejected by the API server's strict field validation instead), open
 * objects as `x-kubernetes-preserve-unknown-fields`, int-or-string without `anyOf`, and no
 * JavaScript safe-integer bounds.
 */
export function structural(node: Json): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === "$schema" || key === "id") continue;
    if (key === "additionalProperties" && value === false) continue;
    if ((key === "minimum" && value === -SAFE) || (key === "maximum" && value === SAFE)) continue;
    out[key] = value;
  }
  if (out["x-kubernetes-preserve-unknown-fields"] === true) {
    delete out["properties"];
    delete out["additionalProperties"];
    out["type"] ??= "object";
  }
  if (out["x-kubernetes-int-or-string"] === true) {
    delete out["anyOf"];
    delete out["type"];
  }
  for (const key of ["properties"] as const) {
    const props = out[key] as Record<string, Json> | undefined;
    if (props) out[key] = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, structural(v)]));
  }
  for (const key of ["items", "additionalProperties"] as const) {
    const child = out[key];
    if (child && typeof child === "object" && !Array.isArray(child)) out[key] = structural(child as Json);
  }
  if (Array.isArray(out["anyOf"])) out["anyOf"] = (out["anyOf"] as Json[]).map(structural);
  return out;
}
