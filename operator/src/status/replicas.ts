import type {LlmService} from "../api/llmservice.js";

/**
 * Replicas the Deployment should have now. Without autoscaling: spec.replicas.desired
 * (what `kubectl scale` sets), else min. With autoscaling: what the Deployment has (the
 * autoscaler sets it through the scale subresource), pulled into [min, max]; so the
 * reconciler never undoes a scaling decision, whatever its cache shows.
 */
export function replicasWanted(svc: LlmService, current: number | undefined): number {
  const {min, max, desired} = svc.spec.replicas;
  const clamp = (n: number) => Math.min(max, Math.max(min, n));
  if (!svc.spec.autoscaling.enabled) return clamp(desired ?? min);
  return clamp(current ?? min);
}
