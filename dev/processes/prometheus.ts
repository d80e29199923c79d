import {spawn, spawnSync, type ChildProcess} from "node:child_process";
import {mkdtempSync, renameSync, rmSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {stringify} from "yaml";

/** One scrape target: a pod's server, labelled as Prometheus' Kubernetes discovery would. */
export interface ScrapeTarget {
  /** host:port */
  readonly address: string;
  readonly namespace: string;
  readonly pod: string;
}

/**
 * A real Prometheus (Debian's `prometheus` package) on a loopback port, scraping targets
 * listed in a file (file_sd). The list is rewritten as pods come and go; Prometheus
 * notices within a second. Development and tests only: in a cluster, the chart's
 * PodMonitor or the pods' prometheus.io annotations do this.
 */
export interface PrometheusOptions {
  /** Scrape and rule evaluation interval. Defaults to 5 (s). */
  readonly scrapeIntervalSeconds?: number;
  /** More scrape_configs entries, as in prometheus.yml (e.g. one translated from a ServiceMonitor). */
  readonly scrapeConfigs?: readonly object[];
  /** Rule groups (`groups:` of a rule file or a PrometheusRule's spec) to evaluate. */
  readonly ruleGroups?: readonly object[];
}

export class PrometheusProcess {
  readonly #dir: string;
  readonly #targetsFile: string;
  #child: ChildProcess | undefined;
  #targets: readonly ScrapeTarget[] = [];

  private constructor(
    readonly port: number,
    private readonly scrapeIntervalSeconds: number,
    private readonly options: PrometheusOptions = {}
  ) {
    this.#dir = mkdtempSync(join(tmpdir(), "paddock-prometheus-"));
    this.#targetsFile = join(this.#dir, "targets.json");
  }

  /** Starts Prometheus and waits until it is ready. `scrapeIntervalSeconds` defaults to 5. */
  static async start(port: number, scrapeIntervalSeconds = 5, options: Omit<PrometheusOptions, "scrapeIntervalSeconds"> = {}): Promise<PrometheusProcess> {
    if (spawnSync("prometheus", ["--version"]).status !== 0) {
      throw new Error("prometheus is not installed: run `bash .ci/run` once, or `apt-get install prometheus`");
    }
    const p = new PrometheusProcess(port, scrapeIntervalSeconds, options);
    p.setTargets([]);
    await p.restart();
    return p;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Replaces the scrape targets (atomically, so Prometheus never reads half a file). */
  setTargets(targets: readonly ScrapeTarget[]): void {
    this.#targets = targets;
    const groups = targets.map((t) => ({targets: [t.address], labels: {namespace: t.namespace, pod: t.pod}}));
    const tmp = `${this.#targetsFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(groups));
    renameSync(tmp, this.#targetsFile);
  }

  get targets(): readonly ScrapeTarget[] {
    return this.#targets;
  }

  /** (Re)starts on the same port with the same data, and waits for /-/ready. */
  async restart(): Promise<void> {
    const interval = `${this.scrapeIntervalSeconds}s`;
    const rules = join(this.#dir, "rules.yml");
    if (this.options.ruleGroups) writeFileSync(rules, stringify({groups: this.options.ruleGroups}));
    const config = {
      global: {scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval},
      ...(this.options.ruleGroups ? {rule_files: [rules]} : {}),
      scrape_configs: [{job_name: "llm-pods", file_sd_configs: [{files: [this.#targetsFile], refresh_interval: "1s"}]}, ...(this.options.scrapeConfigs ?? [])]
    };
    writeFileSync(join(this.#dir, "prometheus.yml"), stringify(config));
    this.#child = spawn(
      "prometheus",
      [
        `--config.file=${join(this.#dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(this.#dir, "data")}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        "--storage.tsdb.retention.time=1d",
        "--log.level=warn"
      ],
      {stdio: ["ignore", "ignore", "pipe"]}
    );
    let stderr = "";
    this.#child.stderr!.on("data", (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (!this.running) throw new Error(`prometheus exited: ${stderr}`);
      try {
        if ((await fetch(`${this.url}/-/ready`, {signal: AbortSignal.timeout(1000)})).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`prometheus did not become ready on port ${this.port}: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGKILL: an outage, as the autoscaler would see one. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child && this.running) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    rmSync(this.#dir, {recursive: true, force: true});
  }
}
