import {ConfigError, loadServerConfig} from "../../inference-image/src/config.js";

const cpu = {cgroupV2CpuMax: "400000 100000", affinityCpus: 64};

describe("server config", () => {
  it("applies the documented defaults", () => {
    const c = loadServerConfig({MODEL_PATH: "/models/Llama-3.2-1B.Q4_K_M.gguf"}, cpu);
    expect(c).toMatchObject({
      modelName: "Llama-3.2-1B.Q4_K_M",
      host: "0.0.0.0",
      port: 8000,
      parallelSlots: 4,
      contextSize: 2048,
      maxQueue: 64,
      gpu: "auto",
      gpuLayers: "auto",
      threads: 3,
      cpuBudgetCores: 4,
      requestTimeoutMs: 600_000,
      shutdownGraceMs: 30_000,
      apiKeysFile: undefined
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("derives threads from the cgroup quota, not the host's cores", () => {
    expect(loadServerConfig({MODEL_PATH: "m.gguf"}, {cgroupV2CpuMax: "200000 100000", affinityCpus: 96}).threads).toBe(1);
    expect(loadServerConfig({MODEL_PATH: "m.gguf", THREADS: "6"}, cpu).threads).toBe(6);
  });

  it("reads every variable", () => {
    const c = loadServerConfig(
      {
        MODEL_PATH: "m.gguf",
        MODEL_NAME: "tiny",
        PORT: "9000",
        PARALLEL_SLOTS: "8",
        CONTEXT_SIZE: "4096",
        MAX_QUEUE: "0",
        GPU: "cuda",
        GPU_LAYERS: "33",
        REQUEST_TIMEOUT_SECONDS: "1.5",
        SHUTDOWN_GRACE_SECONDS: "0",
        API_KEYS_FILE: "/secrets/keys",
        LOG_PROMPTS: "true"
      },
      cpu,
      (path) => (path === "/secrets/keys" ? "sk-one\n" : "")
    );
    expect(c).toMatchObject({
      modelName: "tiny",
      port: 9000,
      parallelSlots: 8,
      contextSize: 4096,
      maxQueue: 0,
      gpu: "cuda",
      gpuLayers: 33,
      requestTimeoutMs: 1500,
      shutdownGraceMs: 0,
      apiKeysFile: "/secrets/keys",
      logPrompts: true
    });
  });

  it("checks the API keys file at start: missing or empty is a configuration error naming the variable", () => {
    const missing = () => {
      throw Object.assign(new Error("ENOENT: no such file or directory, open '/secrets/keys'"), {code: "ENOENT"});
    };
    expect(() => loadServerConfig({MODEL_PATH: "m.gguf", API_KEYS_FILE: "/secrets/keys"}, cpu, missing)).toThrow(/^API_KEYS_FILE: cannot read \/secrets\/keys: ENOENT/);
    expect(() => loadServerConfig({MODEL_PATH: "m.gguf", API_KEYS_FILE: "/secrets/keys"}, cpu, () => "# no keys yet\n\n")).toThrow(/^API_KEYS_FILE: \/secrets\/keys holds no keys/);
    expect(() => loadServerConfig({MODEL_PATH: "m.gguf", API_KEYS_FILE: "/secrets/keys"}, cpu, missing)).toThrow(ConfigError);
  });

  it("treats an empty variable as unset", () => {
    expect(loadServerConfig({MODEL_PATH: "m.gguf", PORT: ""}, cpu).port).toBe(8000);
  });

  it.each([
    [{}, /MODEL_PATH: is required/],
    [{MODEL_PATH: "m.gguf", PARALLEL_SLOTS: "0"}, /PARALLEL_SLOTS/],
    [{MODEL_PATH: "m.gguf", PARALLEL_SLOTS: "four"}, /PARALLEL_SLOTS/],
    [{MODEL_PATH: "m.gguf", GPU: "rocm"}, /GPU: .*"auto"\|"cuda"\|"vulkan"\|"off"/],
    [{MODEL_PATH: "m.gguf", GPU_LAYERS: "lots"}, /GPU_LAYERS/],
    [{MODEL_PATH: "m.gguf", PORT: "70000"}, /PORT/],
    [{MODEL_PATH: "m.gguf", REQUEST_TIMEOUT_SECONDS: "-1"}, /REQUEST_TIMEOUT_SECONDS/]
  ])("rejects %j naming the variable", (env, message) => {
    expect(() => loadServerConfig(env, cpu)).toThrow(ConfigError);
    expect(() => loadServerConfig(env, cpu)).toThrow(message);
  });
});
