/** Parses Prometheus text exposition into `name{labels}` -> value, failing on malformed lines. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.eE+-]+|[Nn]a[Nn]|[+-]Inf)$/.exec(line);
    if (!match) throw new Error(`malformed metrics line: ${line}`);
    out.set(match[1]!, /nan/i.test(match[2]!) ? NaN : Number(match[2]));
  }
  return out;
}

/** Value of a sample, 0 when absent (a counter that never moved is not exported with labels). */
export function sample(metrics: Map<string, number>, key: string): number {
  return metrics.get(key) ?? 0;
}
