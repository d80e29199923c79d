import type {LlmService} from "../api/llmservice.js";

/**
 * Replicas the Deployment should have now. Without autoscaling: spec.replicas.desired
 * (what `kubectl scale` sets), else min. With autoscaling: the autoscaler's last decision
 * (status.desiredReplicas), else what runs now; always within [min, max].
 */
export function replicasWanted(svc: LlmService, current: number | undefined): number {
  const {min, max, desired} = svc.spec.replicas;
  const clamp = (n: number) => Math.min(max, Math.max(min, n));
  if (!svc.spec.autoscaling.enabled) return clamp(desired ?? min);
  return clamp(svc.status?.desiredReplicas ?? current ?? min);
}
