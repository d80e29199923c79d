import {DEMAND_ANNOTATION_PREFIX, DEMAND_FRESH_SECONDS} from "../../../contract/index.js";

/**
 * Requests the routers hold for a service, from its demand Lease's annotations (one per
 * router pod: "<held> <time>"). Entries older than DEMAND_FRESH_SECONDS are ignored: their
 * router died, or stopped holding and could not say so. Pure.
 */
export function heldRequests(annotations: Readonly<Record<string, string>> | undefined, nowMs: number): number {
  let held = 0;
  for (const [key, value] of Object.entries(annotations ?? {})) {
    if (!key.startsWith(DEMAND_ANNOTATION_PREFIX)) continue;
    const [count, at] = value.split(" ");
    const n = Number(count);
    const time = Date.parse(at ?? "");
    if (!Number.isFinite(n) || n <= 0 || !Number.isFinite(time) || nowMs - time > DEMAND_FRESH_SECONDS * 1000) continue;
    held += n;
  }
  return held;
}

/**
 * Whether held requests call for an evaluation now rather than at the next interval: the
 * service is at zero (waking it cannot wait), or the routers hold more than the replicas it
 * has asked for would take at the target (a burst at wake-up: the first replica is not
 * enough, and the held count says by how much). `replicas` is the Deployment's count. Pure.
 */
export function demandIsDue(replicas: number, held: number, targetActiveRequests: number, max: number): boolean {
  if (held <= 0) return false;
  if (replicas === 0) return true;
  return replicas < max && Math.ceil(held / targetActiveRequests - 1e-9) > replicas;
}
