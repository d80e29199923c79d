import {isConflict, resourcePath, type KubeClient} from "../kube/kube-client.js";

/** What leader election needs of the API: the Lease's get, create and replace. */
export type LeaseClient = Pick<KubeClient, "get" | "create" | "replace">;

export interface LeaderElectionOptions {
  readonly namespace: string;
  readonly name: string;
  /** This instance (pod name); unique among replicas. */
  readonly identity: string;
  /** How long a lease is valid without renewal; followers wait this long. Defaults to 15 (s). */
  readonly leaseDurationSeconds?: number;
  /**
   * How long the leader keeps acting without a successful renewal. Shorter than the lease,
   * so it stops before any follower can take over. Defaults to 2/3 of the lease (10 s of 15).
   */
  readonly renewDeadlineMs?: number;
  /**
   * How often the leader renews and a follower tries to take over. Defaults to 2_000 (ms),
   * or a sixth of the lease when that is shorter, so the leader gets several tries within
   * its renew deadline.
   */
  readonly retryPeriodMs?: number;
  /** Wall clock. Defaults to `() => new Date()`. */
  readonly now?: () => Date;
  /** Told why a renewal or takeover attempt failed. */
  readonly onAttemptFailed?: (error: unknown, leading: boolean) => void;
  /** Told when another instance is seen holding the lease (once per holder). */
  readonly onFollowing?: (holder: string) => void;
}

/** A coordination.k8s.io/v1 Lease as it is on the wire (the client's model types MicroTime as Date). */
interface Lease {
  apiVersion: "coordination.k8s.io/v1";
  kind: "Lease";
  metadata: {name: string; namespace: string; resourceVersion?: string};
  spec: LeaseSpec;
}
interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** Lease timestamps are MicroTime: RFC 3339 with microseconds. */
const microTime = (d: Date) => d.toISOString().replace("Z", "000Z");

/**
 * Leader election on a coordination.k8s.io Lease, with client-go's timing: the leader
 * renews every retry period and stops acting once it has gone a renew deadline without a
 * successful renewal, which is before the lease expires and a follower may take over. The
 * API server's resourceVersion check guarantees at most one holder; `mayAct()` makes every
 * writer of this process stop on time (the operator's KubeClient checks it before each write).
 */
export class LeaderElector {
  #leader = false;
  #lastRenewMs = 0;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #holder: string | undefined;

  constructor(
    private readonly kube: LeaseClient,
    private readonly options: LeaderElectionOptions
  ) {}

  get #leaseMs(): number {
    return (this.options.leaseDurationSeconds ?? 15) * 1000;
  }

  get #renewDeadlineMs(): number {
    return this.options.renewDeadlineMs ?? Math.round((this.#leaseMs * 2) / 3);
  }

  #nowMs(): number {
    return (this.options.now ?? (() => new Date()))().getTime();
  }

  /** Whether this instance holds the lease and renewed it within the renew deadline. */
  mayAct(): boolean {
    return this.#leader && this.#nowMs() - this.#lastRenewMs < this.#renewDeadlineMs;
  }

  /**
   * Campaigns until leading, then keeps renewing. `onLost` runs when the lease went to
   * someone else or could not be renewed within the renew deadline: the caller must stop
   * acting at once (the operator exits).
   */
  run(onElected: () => void, onLost: (why: string) => void): void {
    const tick = async () => {
      if (this.#stopped) return;
      const started = this.#nowMs();
      let why: string | undefined;
      try {
        if (await this.tryAcquireOrRenew()) {
          this.#lastRenewMs = started;
          if (!this.#leader) {
            this.#leader = true;
            onElected();
          }
        } else if (this.#leader) why = "another instance holds the lease";
      } catch (error) {
        this.options.onAttemptFailed?.(error, this.#leader);
      }
      if (this.#leader && why === undefined && this.#nowMs() - this.#lastRenewMs >= this.#renewDeadlineMs) {
        why = `no successful renewal for ${this.#nowMs() - this.#lastRenewMs} ms (renew deadline ${this.#renewDeadlineMs} ms)`;
      }
      if (why !== undefined) {
        this.#leader = false;
        onLost(why);
        return;
      }
      this.#timer = setTimeout(() => void tick(), this.options.retryPeriodMs ?? Math.min(2_000, this.#leaseMs / 6));
    };
    void tick();
  }

  /** One attempt: create the lease, renew ours, or take over an expired one. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const {namespace, name, identity} = this.options;
    const now = new Date(this.#nowMs());
    const leaseDurationSeconds = this.#leaseMs / 1000;
    const current = await this.kube.get<Lease>(resourcePath("coordination.k8s.io/v1", "Lease", namespace, name));
    const fresh: LeaseSpec = {holderIdentity: identity, leaseDurationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0};
    try {
      if (!current) {
        await this.kube.create({apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: {name, namespace}, spec: fresh});
        return true;
      }
      const spec = current.spec;
      const expires = spec.renewTime ? Date.parse(spec.renewTime) + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000 : 0;
      const ours = spec.holderIdentity === identity;
      if (!ours && spec.holderIdentity && expires > now.getTime()) {
        if (this.#holder !== spec.holderIdentity) this.options.onFollowing?.(spec.holderIdentity);
        this.#holder = spec.holderIdentity;
        return false;
      }
      const next = {
        ...current,
        spec: ours ? {...spec, renewTime: microTime(now), leaseDurationSeconds} : {...fresh, leaseTransitions: (spec.leaseTransitions ?? 0) + 1}
      };
      await this.kube.replace(next);
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
    await this.kube.replace({...current, spec: {...current.spec, holderIdentity: "", renewTime: microTime(new Date(0))}}).catch(() => {});
  }
}
