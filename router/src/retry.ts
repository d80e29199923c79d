/** Retries after the first attempt: a request reaches at most three replicas. */
export const MAX_RETRIES = 2;

/** Why an attempt failed before any byte reached the client. */
export type FailureReason = "connect_error" | "reset" | "draining" | "queue_full";

/**
 * Whether an upstream status is worth another replica: 503 (draining, or not ready) and 429
 * (its queue is full). Anything else is the replica's answer to this request and passes through.
 */
export function retryableStatus(status: number): FailureReason | undefined {
  if (status === 503) return "draining";
  if (status === 429) return "queue_full";
  return undefined;
}

/** A socket error before the response began: refused (nothing listens) or reset/closed (it died). */
export function failureOf(error: NodeJS.ErrnoException): FailureReason {
  return error.code === "ECONNREFUSED" || error.code === "EHOSTUNREACH" || error.code === "ENETUNREACH" || error.code === "ETIMEDOUT" ? "connect_error" : "reset";
}

/**
 * Whether a request with no untried replica left should wait for a new one, or for room. A
 * replica that is going away (draining, refused, reset) is replaced by its Deployment, so
 * waiting pays. A full queue means the service is busy, and the client should hear 429
 * now, unless the request was already waiting for a replica (`held`): then the service is
 * waking, its first replica takes in what it can, and the rest wait for room or for more
 * replicas (the held count tells the autoscaler how many).
 */
export function worthWaiting(last: FailureReason | undefined, held = false): boolean {
  return last !== "queue_full" || held;
}
