import {cgroupQuotaCores, cpuBudget, defaultThreads} from "../../inference-image/src/engine/cpu-budget.js";

describe("CPU budget", () => {
  it("reads a cgroup v2 quota as cores", () => {
    expect(cgroupQuotaCores({cgroupV2CpuMax: "200000 100000\n", affinityCpus: 64})).toBe(2);
    expect(cgroupQuotaCores({cgroupV2CpuMax: "150000 100000", affinityCpus: 64})).toBe(1.5);
  });

  it("treats 'max' and v1's -1 as unlimited", () => {
    expect(cgroupQuotaCores({cgroupV2CpuMax: "max 100000", affinityCpus: 8})).toBeUndefined();
    expect(cgroupQuotaCores({cgroupV1Quota: "-1", cgroupV1Period: "100000", affinityCpus: 8})).toBeUndefined();
  });

  it("reads a cgroup v1 quota", () => {
    expect(cgroupQuotaCores({cgroupV1Quota: "400000", cgroupV1Period: "100000", affinityCpus: 8})).toBe(4);
  });

  it("takes the smaller of quota and affinity", () => {
    expect(cpuBudget({cgroupV2CpuMax: "400000 100000", affinityCpus: 2})).toBe(2);
    expect(cpuBudget({cgroupV2CpuMax: "100000 100000", affinityCpus: 64})).toBe(1);
    expect(cpuBudget({affinityCpus: 16})).toBe(16);
  });

  it("leaves one core to the event loop and never goes below one thread", () => {
    expect(defaultThreads(2)).toBe(1);
    expect(defaultThreads(1)).toBe(1);
    expect(defaultThreads(0.5)).toBe(1);
    expect(defaultThreads(2.5)).toBe(1);
    expect(defaultThreads(16)).toBe(15);
  });
});
