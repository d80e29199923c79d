import {createHash} from "node:crypto";
import {CoordinationV1Api, PatchStrategy, setHeaderOptions, type KubeConfig} from "@kubernetes/client-node";
import {DEMAND_ANNOTATION_PREFIX, DEMAND_REFRESH_SECONDS} from "../../contract/index.js";

/** This pod's annotation key; the name part of a key holds at most 63 characters. */
export function demandKey(pod: string): string {
  const name = pod.length <= 63 ? pod : `${pod.slice(0, 50)}-${createHash("sha256").update(pod).digest("hex").slice(0, 12)}`;
  return `${DEMAND_ANNOTATION_PREFIX}${name}`;
}

/** The annotation value a router writes: held requests and when it counted them. */
export const demandValue = (held: number, at: Date) => `${held} ${at.toISOString()}`;

/**
 * Tells the operator how many requests this router holds, through the service's demand
 * Lease (one annotation per router pod). Written at once when holding starts, so a service
 * at zero wakes within a second or two; again at once whenever the count has doubled since
 * the last write, so a burst's size reaches the autoscaler while it wakes the service
 * (which sizes the wake from it); refreshed every DEMAND_REFRESH_SECONDS while requests are
 * held, and removed when none are. Failures are reported and retried on the next refresh:
 * holding never depends on them.
 */
export class DemandSignal {
  #held = 0;
  #written: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  /** A write is queued and has not read the count yet (later changes ride on it). */
  #pending = false;

  constructor(
    private readonly write: (held: number | undefined) => Promise<void>,
    private readonly onError: (error: unknown) => void
  ) {}

  /** The router's held count changed. */
  set(held: number): void {
    const before = this.#held;
    this.#held = held;
    if ((before === 0) !== (held === 0) || (held >= 2 * (this.#written ?? 0) && !this.#pending)) this.#flush();
    if (held > 0 && !this.#timer) {
      this.#timer = setInterval(() => this.#flush(), DEMAND_REFRESH_SECONDS * 1000);
      this.#timer.unref();
    } else if (held === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#writing;
    if (this.#written !== undefined) await this.write(undefined).catch(this.onError);
  }

  #flush(): void {
    this.#pending = true;
    this.#writing = this.#writing.then(async () => {
      this.#pending = false;
      const held = this.#held;
      if (held === 0 && this.#written === undefined) return;
      try {
        await this.write(held > 0 ? held : undefined);
        this.#written = held > 0 ? held : undefined;
      } catch (e) {
        this.onError(e);
      }
    });
  }
}

/** Writes this pod's entry of the demand Lease by JSON merge patch (a null removes it). */
export function leaseWriter(kc: KubeConfig, namespace: string, lease: string, pod: string): (held: number | undefined) => Promise<void> {
  const api = kc.makeApiClient(CoordinationV1Api);
  return async (held) => {
    const body = {metadata: {annotations: {[demandKey(pod)]: held === undefined ? null : demandValue(held, new Date())}}};
    await api.patchNamespacedLease({name: lease, namespace, body}, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
  };
}
