/** A failed query, with a message that says what went wrong and where. */
export class PrometheusError extends Error {
  override name = "PrometheusError";
  constructor(
    message: string,
    /** Unreachable (network, timeout, 5xx) or the query itself was refused (4xx, bad_data). */
    readonly kind: "unreachable" | "query"
  ) {
    super(message);
  }
}

export interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/**
 * Instant queries against the Prometheus HTTP API (`/api/v1/query`). Thin on purpose:
 * everything that decides what to do with the answer is in load.ts and recommender.ts.
 */
export class PrometheusClient {
  constructor(
    readonly baseUrl: string,
    /** Per query. Defaults to 3000 (ms): well under an evaluation interval. */
    private readonly timeoutMs = 3_000
  ) {}

  /** Evaluates `query` now; a scalar answer becomes one unlabelled sample. */
  async query(query: string): Promise<Sample[]> {
    const url = `${this.baseUrl.replace(/\/+$/, "")}/api/v1/query`;
    let res: Response;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: {"Content-Type": "application/x-www-form-urlencoded"},
        body: new URLSearchParams({query}),
        signal: AbortSignal.timeout(this.timeoutMs)
      });
    } catch (e) {
      // fetch's "fetch failed" says nothing; its cause names the socket error. Duck-typed:
      // undici's errors need not share this realm's Error.
      const err = e as {message?: string; cause?: {message?: string; code?: string}} | undefined;
      const cause = err?.cause?.message || err?.cause?.code || err?.message || String(e);
      throw new PrometheusError(`Prometheus at ${this.baseUrl} is unreachable: ${cause}`, "unreachable");
    }
    const text = await res.text();
    let body: {status?: string; errorType?: string; error?: string; data?: {resultType?: string; result?: unknown}};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new PrometheusError(`Prometheus at ${this.baseUrl} answered HTTP ${res.status} without a JSON body: ${text.slice(0, 200)}`, res.status >= 500 ? "unreachable" : "query");
    }
    if (body.status !== "success") {
      const kind = res.status >= 500 && body.errorType !== "bad_data" ? "unreachable" : "query";
      throw new PrometheusError(`Prometheus rejected the query (${body.errorType ?? `HTTP ${res.status}`}): ${body.error ?? text.slice(0, 200)}`, kind);
    }
    return samplesOf(body.data?.resultType, body.data?.result);
  }
}

function samplesOf(type: string | undefined, result: unknown): Sample[] {
  if (type === "scalar") return [{labels: {}, value: Number((result as [number, string])[1])}];
  if (type === "vector") {
    return (result as Array<{metric: Record<string, string>; value: [number, string]}>).map((r) => ({labels: r.metric, value: Number(r.value[1])}));
  }
  throw new PrometheusError(`the query must return an instant vector or a scalar, not ${type ?? "nothing"}`, "query");
}
