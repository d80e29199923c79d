import {z} from "zod";

/**
 * `spec.scheduling`'s Kubernetes structures (Toleration, Affinity), declared with the same
 * fields, enums and required keys as the core API, so `kubectl apply` rejects a malformed
 * one with the field named, instead of the Deployment apply failing later. Field
 * descriptions are short forms of the Kubernetes API reference.
 */

const str = z.string().max(316);
const strings = z.array(str).max(64);

const labelSelectorRequirement = z.strictObject({
  key: str.min(1).describe("Label key the selector applies to."),
  operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]).describe("Relationship of the key to the values."),
  values: strings.optional().describe("Values for In and NotIn; empty for Exists and DoesNotExist.")
});

const labelSelector = z.strictObject({
  matchLabels: z.record(z.string(), z.string()).optional().describe("Labels that must all match."),
  matchExpressions: z.array(labelSelectorRequirement).max(32).optional().describe("Requirements that must all hold.")
});

const nodeSelectorRequirement = z.strictObject({
  key: str.min(1).describe("Node label (or field) key."),
  operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]).describe("Relationship of the key to the values."),
  values: strings.optional().describe("Values; one integer for Gt and Lt, none for Exists and DoesNotExist.")
});

const nodeSelectorTerm = z.strictObject({
  matchExpressions: z.array(nodeSelectorRequirement).max(32).optional().describe("Requirements on node labels."),
  matchFields: z.array(nodeSelectorRequirement).max(32).optional().describe("Requirements on node fields.")
});

const podAffinityTerm = z.strictObject({
  labelSelector: labelSelector.optional().describe("Pods this term is about."),
  namespaceSelector: labelSelector.optional().describe("Namespaces of those pods, by label."),
  namespaces: strings.optional().describe("Namespaces of those pods, by name. Defaults to the pod's own."),
  topologyKey: str.min(1).describe("Node label whose value defines 'co-located' (e.g. kubernetes.io/hostname)."),
  matchLabelKeys: strings.optional().describe("Pod label keys whose values are added to labelSelector with In."),
  mismatchLabelKeys: strings.optional().describe("Pod label keys whose values are added to labelSelector with NotIn.")
});

const weight = z.number().int().min(1).max(100).describe("Weight, 1-100.");

const podAffinity = z.strictObject({
  requiredDuringSchedulingIgnoredDuringExecution: z.array(podAffinityTerm).max(32).optional().describe("Terms that must hold at scheduling."),
  preferredDuringSchedulingIgnoredDuringExecution: z
    .array(z.strictObject({weight, podAffinityTerm: podAffinityTerm.describe("The pod affinity term, with the weight.")}))
    .max(32)
    .optional()
    .describe("Weighted terms the scheduler prefers.")
});

export const tolerationSchema = z.strictObject({
  key: str.optional().describe("Taint key; empty with operator Exists matches every taint."),
  operator: z.enum(["Exists", "Equal"]).optional().describe("Exists or Equal. Defaults to Equal."),
  value: str.optional().describe("Taint value for Equal."),
  effect: z.enum(["NoSchedule", "PreferNoSchedule", "NoExecute"]).optional().describe("Taint effect to match; empty matches all."),
  tolerationSeconds: z.number().int().optional().describe("For NoExecute: how long the pod stays after the taint appears. Defaults to forever.")
});

export const affinitySchema = z.strictObject({
  nodeAffinity: z
    .strictObject({
      requiredDuringSchedulingIgnoredDuringExecution: z
        .strictObject({nodeSelectorTerms: z.array(nodeSelectorTerm).min(1).max(32).describe("Terms ORed together.")})
        .optional()
        .describe("Nodes the pod may run on."),
      preferredDuringSchedulingIgnoredDuringExecution: z
        .array(z.strictObject({weight, preference: nodeSelectorTerm.describe("The node selector term, with the weight.")}))
        .max(32)
        .optional()
        .describe("Weighted node preferences.")
    })
    .optional()
    .describe("Which nodes the pods prefer or require."),
  podAffinity: podAffinity.optional().describe("Pods to be co-located with."),
  podAntiAffinity: podAffinity.optional().describe("Pods to keep away from.")
});
