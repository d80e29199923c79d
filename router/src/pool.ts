import type {RoutingStrategy} from "../../contract/index.js";
import {HashRing, leastLoad, prefixHash, type Replica} from "./balancer.js";
import type {Cancellation} from "./cancel.js";

/** A replica that refused or reset a connection gets no new requests for this long, unless it is the only one. */
export const EJECT_MS = 2_000;

/** Told of every change, each kind on its own: a request's acquire and release are on the hot path. */
export interface PoolObserver {
  replicas?(replicas: readonly Replica[]): void;
  load?(replica: string, inFlight: number | undefined): void;
  held?(held: number): void;
}

export interface Choice {
  readonly replica: Replica;
  /** PrefixHash only: whether the key's own replica took it. */
  readonly affine?: boolean;
}

/**
 * The ready replicas as this router sees them, what it has in flight on each, and the
 * requests waiting for a replica. Balancing decisions are the pure functions of
 * balancer.ts; this class only keeps their inputs current.
 */
export class ReplicaPool {
  #replicas: readonly Replica[] = [];
  #ring = new HashRing([]);
  readonly #loads = new Map<string, number>();
  readonly #ejected = new Map<string, number>();
  readonly #waiters = new Set<() => void>();
  #held = 0;

  constructor(
    private readonly strategy: RoutingStrategy,
    private readonly loadFactor: number,
    private readonly observer: PoolObserver = {},
    private readonly now: () => number = Date.now
  ) {}

  get replicas(): readonly Replica[] {
    return this.#replicas;
  }

  get held(): number {
    return this.#held;
  }

  /** Replaces the ready set (from EndpointSlices); wakes every held request to look again. */
  update(replicas: readonly Replica[]): void {
    const same = replicas.length === this.#replicas.length && replicas.every((r, i) => r.name === this.#replicas[i]!.name && r.url === this.#replicas[i]!.url);
    if (same) return;
    this.#replicas = replicas;
    this.#ring = new HashRing(replicas.map((r) => r.name));
    for (const name of this.#loads.keys()) {
      if (!replicas.some((r) => r.name === name) && this.#loads.get(name) === 0) {
        this.#loads.delete(name);
        this.observer.load?.(name, undefined);
      }
    }
    for (const r of replicas) if (!this.#loads.has(r.name)) this.observer.load?.(r.name, 0);
    this.observer.replicas?.(replicas);
    for (const wake of [...this.#waiters]) wake();
  }

  /** The replica for a request, skipping those already tried; undefined when none is left. */
  choose(key: string, exclude: ReadonlySet<string>): Choice | undefined {
    let candidates = this.#replicas.filter((r) => !exclude.has(r.name));
    if (candidates.length === 0) return undefined;
    const now = this.now();
    const healthy = candidates.filter((r) => (this.#ejected.get(r.name) ?? 0) <= now);
    if (healthy.length > 0) candidates = healthy;
    if (this.strategy === "PrefixHash" && key !== "") {
      const c = prefixHash(this.#ring, key, candidates, this.#loads, this.loadFactor);
      return c ? {replica: c.replica, affine: c.affine} : undefined;
    }
    const replica = leastLoad(candidates, this.#loads);
    return replica ? {replica} : undefined;
  }

  /** Counts a request in flight on a replica until the returned function is called. */
  acquire(name: string): () => void {
    const now = (this.#loads.get(name) ?? 0) + 1;
    this.#loads.set(name, now);
    this.observer.load?.(name, now);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = Math.max(0, (this.#loads.get(name) ?? 1) - 1);
      if (left === 0 && !this.#replicas.some((r) => r.name === name)) {
        this.#loads.delete(name);
        this.observer.load?.(name, undefined);
      } else {
        this.#loads.set(name, left);
        this.observer.load?.(name, left);
      }
    };
  }

  /** A replica refused or reset a connection: others get the next requests for a while. */
  eject(name: string): void {
    this.#ejected.set(name, this.now() + EJECT_MS);
  }

  /** Holds a request until the ready set changes, the request is cancelled or `ms` pass. The caller bounds how many wait. */
  async hold(ms: number, cancel: Cancellation): Promise<void> {
    this.#held++;
    this.observer.held?.(this.#held);
    try {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          forget();
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, ms));
        const forget = cancel.onCancel(done);
        this.#waiters.add(done);
      });
    } finally {
      this.#held--;
      this.observer.held?.(this.#held);
    }
  }
}
