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
  /** A replica refused or reset a connection: it is avoided for EJECT_MS. */
  ejected?(replica: string): void;
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

  /**
   * Replaces the ready set (from EndpointSlices); wakes every held request to look again.
   * A replica that left the set is forgotten as ejected: if it comes back (a restarted
   * container keeps its pod name), it is a new process.
   */
  update(replicas: readonly Replica[]): void {
    const same = replicas.length === this.#replicas.length && replicas.every((r, i) => r.name === this.#replicas[i]!.name && r.url === this.#replicas[i]!.url);
    if (same) return;
    this.#replicas = replicas;
    for (const name of this.#ejected.keys()) if (!replicas.some((r) => r.name === name)) this.#ejected.delete(name);
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

  /**
   * Counts a request in flight on a replica until the returned function is called, with
   * `served` true when the replica answered it (its slot is free now: the request held
   * longest is woken); a refused or failed attempt frees nothing a held request could use.
   */
  acquire(name: string): (served?: boolean) => void {
    const now = (this.#loads.get(name) ?? 0) + 1;
    this.#loads.set(name, now);
    this.observer.load?.(name, now);
    let released = false;
    return (served = false) => {
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
      // A slot is free: the request held longest may try again (see hold()).
      if (served) this.#waiters.values().next().value?.();
    };
  }

  /** A replica refused or reset a connection: others get the next requests for a while. */
  eject(name: string): void {
    const now = this.now();
    for (const [n, until] of this.#ejected) if (until <= now) this.#ejected.delete(n);
    this.#ejected.set(name, now + EJECT_MS);
    this.observer.ejected?.(name);
  }

  /** Replicas ejected and not yet forgotten (expired ejections go at the next ejection or set change). */
  get ejected(): readonly string[] {
    return [...this.#ejected.keys()];
  }

  /**
   * Holds a request until the ready set changes (every held request looks again), a request
   * in flight ends (the one held longest looks again: its replica may have room now), the
   * request is cancelled or `ms` pass. The caller bounds how many wait.
   */
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
