const SUFFIX: Record<string, number> = {"": 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60};

/**
 * Bytes of a Kubernetes quantity (`1Gi`, `500M`, `1e9`, `0`), rounded down; the schema has
 * already checked its form. Sub-unit suffixes (`m`) make no sense for bytes and read as 0.
 */
export function quantityBytes(quantity: string): number {
  const match = /^([0-9.]+)(?:[eE]([0-9]+)|([KMGTPE]i?|k|[mun]))?$/.exec(quantity);
  if (!match) throw new Error(`not a quantity: ${quantity}`);
  const [, number, exponent, suffix = ""] = match;
  const factor = exponent !== undefined ? 10 ** Number(exponent) : (SUFFIX[suffix] ?? 0);
  return Math.floor(Number(number) * factor);
}
