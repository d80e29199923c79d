import {createHash} from "node:crypto";

/** A model pod the router may send requests to. */
export interface Replica {
  /** Stable identity (the pod name): the ring is built from it, so a pod keeps its keys across IP changes. */
  readonly name: string;
  /** `http://host:port`. */
  readonly url: string;
}

/** In-flight requests per replica name, as this router counts them. */
export type Loads = ReadonlyMap<string, number>;

/**
 * LeastLoad: the replica with the fewest in-flight requests, ties broken at random (so
 * routers that see the same counts do not all pick the same replica). Pure but for `random`.
 */
export function leastLoad(replicas: readonly Replica[], loads: Loads, random: () => number = Math.random): Replica | undefined {
  let best: Replica[] = [];
  let bestLoad = Infinity;
  for (const r of replicas) {
    const load = loads.get(r.name) ?? 0;
    if (load < bestLoad) {
      best = [r];
      bestLoad = load;
    } else if (load === bestLoad) best.push(r);
  }
  return best.length === 0 ? undefined : best[Math.floor(random() * best.length) % best.length];
}

/** Points per replica on the ring: enough that keys spread within a few percent. */
export const VIRTUAL_NODES = 160;

const point = (s: string) => createHash("sha256").update(s).digest().readUInt32BE(0);

/**
 * A consistent-hash ring over replica names. Adding or removing a replica moves only the
 * keys that hashed to its points (about 1/N of them).
 */
export class HashRing {
  readonly #points: Uint32Array;
  readonly #owners: readonly string[];
  readonly #replicas: number;

  constructor(names: readonly string[]) {
    const entries: Array<[number, string]> = [];
    for (const name of names) for (let i = 0; i < VIRTUAL_NODES; i++) entries.push([point(`${name}#${i}`), name]);
    entries.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : 1));
    this.#points = Uint32Array.from(entries.map((e) => e[0]));
    this.#owners = entries.map((e) => e[1]);
    this.#replicas = new Set(names).size;
  }

  /** Distinct replica names in ring order, starting at the key's position. */
  walk(key: string): string[] {
    return walkRing(this.#points, this.#owners, this.#replicas, point(key));
  }
}

/**
 * The distinct owners of ring points from the first point at or after `h`, in order. Stops
 * as soon as all `replicas` are found: usually after a few points, not the ring's
 * `replicas` x VIRTUAL_NODES (it scanned them all on every request before). Pure.
 */
export function walkRing(points: Uint32Array, owners: readonly string[], replicas: number, h: number): string[] {
  const n = points.length;
  if (n === 0) return [];
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid]! < h) lo = mid + 1;
    else hi = mid;
  }
  const seen = new Set<string>();
  for (let i = 0; i < n && seen.size < replicas; i++) seen.add(owners[(lo + i) % n]!);
  return [...seen];
}

export interface PrefixChoice {
  readonly replica: Replica;
  /** Whether it is the key's own replica (the first on the ring), not a spill-over. */
  readonly affine: boolean;
}

/**
 * PrefixHash: consistent hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam).
 * The key's replica takes the request unless it already holds more than
 * `loadFactor` x the average in-flight load (counting this request), then the next replica
 * on the ring that does not. Requests sharing a prefix thus land where its KV cache lives
 * while no replica is buried under one hot prefix.
 */
export function prefixHash(ring: HashRing, key: string, replicas: readonly Replica[], loads: Loads, loadFactor: number): PrefixChoice | undefined {
  if (replicas.length === 0) return undefined;
  const byName = new Map(replicas.map((r) => [r.name, r]));
  let total = 1;
  for (const r of replicas) total += loads.get(r.name) ?? 0;
  const bound = Math.ceil((loadFactor * total) / replicas.length);
  let first = true;
  for (const name of ring.walk(key)) {
    const replica = byName.get(name);
    if (!replica) {
      first = false; // on the ring but excluded (already tried): the next one is a spill-over
      continue;
    }
    if ((loads.get(name) ?? 0) + 1 <= bound) return {replica, affine: first};
    first = false;
  }
  // Every candidate is at the bound (it rounds up, so this is rare): least loaded then.
  const fallback = leastLoad(replicas, loads);
  return fallback ? {replica: fallback, affine: false} : undefined;
}
