import {readFileSync} from "node:fs";
import {availableParallelism} from "node:os";

/**
 * CPU budget of this process, in cores, from the cgroup quota and the CPU affinity.
 *
 * Containers usually see every host core in `nproc` while their cgroup allows far fewer;
 * llama.cpp threads spin, so sizing by the host's cores oversubscribes the quota and
 * collapses throughput (measured: 4 threads on a 2-core budget gave 0.5 tok/s, 1 gave ~1,000).
 */
export interface CpuBudgetSources {
  /** Contents of cgroup v2 `cpu.max` ("<quota> <period>" or "max <period>"), if readable. */
  readonly cgroupV2CpuMax?: string | undefined;
  /** cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us`, if readable. */
  readonly cgroupV1Quota?: string | undefined;
  readonly cgroupV1Period?: string | undefined;
  /** CPUs this process may run on (affinity), as `os.availableParallelism()` reports. */
  readonly affinityCpus: number;
}

/** Parses the cgroup quota into cores; `undefined` when unlimited or unreadable. */
export function cgroupQuotaCores(sources: CpuBudgetSources): number | undefined {
  if (sources.cgroupV2CpuMax !== undefined) {
    const [quota, period] = sources.cgroupV2CpuMax.trim().split(/\s+/);
    if (quota === undefined || quota === "max") return undefined;
    return ratio(quota, period ?? "100000");
  }
  if (sources.cgroupV1Quota !== undefined && sources.cgroupV1Period !== undefined) {
    return ratio(sources.cgroupV1Quota.trim(), sources.cgroupV1Period.trim());
  }
  return undefined;
}

function ratio(quota: string, period: string): number | undefined {
  const q = Number(quota);
  const p = Number(period);
  if (!Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return undefined;
  return q / p;
}

/** Cores this process may use: the smaller of the cgroup quota and the affinity set. */
export function cpuBudget(sources: CpuBudgetSources): number {
  const quota = cgroupQuotaCores(sources);
  return quota === undefined ? sources.affinityCpus : Math.min(quota, sources.affinityCpus);
}

/**
 * Default llama.cpp thread count for a CPU budget: one core is left to Node's event loop
 * (HTTP, SSE, JSON) because llama.cpp's spinning threads would otherwise starve it.
 * Never below 1. A fractional quota rounds down (1.5 cores -> 1 thread).
 */
export function defaultThreads(budgetCores: number): number {
  return Math.max(1, Math.floor(budgetCores) - 1);
}

/** Reads the real sources of this machine; missing files are simply absent. */
export function readCpuBudgetSources(): CpuBudgetSources {
  return {
    cgroupV2CpuMax: tryRead("/sys/fs/cgroup/cpu.max"),
    cgroupV1Quota: tryRead("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    cgroupV1Period: tryRead("/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    affinityCpus: availableParallelism()
  };
}

function tryRead(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
