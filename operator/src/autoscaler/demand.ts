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
