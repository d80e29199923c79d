import {isConflict, resourcePath, type KubeClient} from "../kube/kube-client.js";

export interface LeaderElectionOptions {
  readonly namespace: string;
  readonly name: string;
  /** This instance (pod name); unique among replicas. */
  readonly identity: string;
  /** How long a lease is valid without renewal. Defaults to 15 (s). */
  readonly leaseDurationSeconds?: number;
  /** How often the leader renews. Defaults to 5_000 (ms). */
  readonly renewEveryMs?: number;
  /** How often a follower tries to take over. Defaults to 2_000 (ms). */
  readonly retryEveryMs?: number;
  readonly now?: () => Date;
}

interface Lease {
  apiVersion: "coordination.k8s.io/v1";
  kind: "Lease";
  metadata: {name: string; namespace: string; resourceVersion?: string};
  spec: {holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number};
}

/** Lease timestamps are MicroTime: RFC 3339 with microseconds. */
const microTime = (d: Date) => d.toISOString().replace("Z", "000Z");

/**
 * Leader election on a coordination.k8s.io Lease, with optimistic concurrency: the API
 * server's resourceVersion check guarantees at most one holder. A follower takes over only
 * after the holder's lease expired, so two operators never both act.
 */
export class LeaderElector {
  #leader = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly kube: KubeClient,
    private readonly options: LeaderElectionOptions
  ) {}

  /**
   * Campaigns until leading, then keeps renewing. `onLost` runs when renewal fails for a
   * whole lease duration: the caller must stop acting at once (the operator exits).
   */
  run(onElected: () => void, onLost: () => void): void {
    const duration = (this.options.leaseDurationSeconds ?? 15) * 1000;
    let lastRenew = 0;
    const tick = async () => {
      if (this.#stopped) return;
      try {
        const held = await this.tryAcquireOrRenew();
        if (held) {
          lastRenew = Date.now();
          if (!this.#leader) {
            this.#leader = true;
            onElected();
          }
        } else if (this.#leader) {
          this.#leader = false;
          onLost();
          return;
        }
      } catch {
        if (this.#leader && Date.now() - lastRenew > duration) {
          this.#leader = false;
          onLost();
          return;
        }
      }
      this.#timer = setTimeout(() => void tick(), this.#leader ? (this.options.renewEveryMs ?? 5_000) : (this.options.retryEveryMs ?? 2_000));
    };
    void tick();
  }

  /** One attempt: create the lease, renew ours, or take over an expired one. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const {namespace, name, identity} = this.options;
    const now = (this.options.now ?? (() => new Date()))();
    const leaseDurationSeconds = this.options.leaseDurationSeconds ?? 15;
    const current = await this.kube.get<Lease>(resourcePath("coordination.k8s.io/v1", "Lease", namespace, name));
    const fresh: Lease["spec"] = {holderIdentity: identity, leaseDurationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0};
    try {
      if (!current) {
        await this.kube.create({apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: {name, namespace}, spec: fresh} as never);
        return true;
      }
      const spec = current.spec;
      const expires = spec.renewTime ? Date.parse(spec.renewTime) + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000 : 0;
      const ours = spec.holderIdentity === identity;
      if (!ours && spec.holderIdentity && expires > now.getTime()) return false;
      const next: Lease = {
        ...current,
        spec: ours
          ? {...spec, renewTime: microTime(now), leaseDurationSeconds}
          : {...fresh, leaseTransitions: (spec.leaseTransitions ?? 0) + 1}
      };
      await this.kube.replace(next as never);
      return true;
    } catch (e) {
      if (isConflict(e)) return false; // someone else wrote the lease first
      throw e;
    }
  }

  /** Stops campaigning and, if leading, hands the lease back so a follower takes over at once. */
  async release(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (!this.#leader) return;
    this.#leader = false;
    const {namespace, name, identity} = this.options;
    const current = await this.kube.get<Lease>(resourcePath("coordination.k8s.io/v1", "Lease", namespace, name));
    if (current?.spec.holderIdentity !== identity) return;
    await this.kube.replace({...current, spec: {...current.spec, holderIdentity: "", renewTime: microTime(new Date(0))}} as never).catch(() => {});
  }
}
