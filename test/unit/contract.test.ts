import {CONTAINER, DEFAULT_PORT, ENV, FETCH_ENV, IMAGE_ENTRY} from "../../contract/index.js";
import {planContainer, type ContainerSpec} from "../../dev/runtime/pod-plan.js";
import {loadServerConfig} from "../../inference-image/src/config.js";
import {parseLlmService, type LlmService} from "../../operator/src/api/llmservice.js";
import {desiredDeployment} from "../../operator/src/desired/deployment.js";
import {desiredDownloadJob, modelCache} from "../../operator/src/desired/model-cache.js";
import {desiredRouterDeployment} from "../../operator/src/desired/router.js";
import {loadRouterConfig} from "../../router/src/config.js";

/**
 * The operator and the inference server share no code but contract/. This feeds the
 * environment the operator writes into a pod, resolved as the kubelet resolves it
 * ($(VAR), Secret keys; dev/runtime/pod-plan.ts), through the server's own config parser,
 * so a renamed or reshaped variable on either side fails here.
 */
const cpu = {cgroupV2CpuMax: "400000 100000", affinityCpus: 8};
const svc = (spec: Record<string, unknown>): LlmService =>
  parseLlmService({metadata: {name: "chat", namespace: "team-a", uid: "u-1", generation: 1}, spec: {model: {uri: "https://models.example/llama-3b.Q4.gguf"}, ...spec}});

function serverEnv(s: LlmService): {env: Record<string, string>; init: ContainerSpec | undefined} {
  const pod = desiredDeployment(s, {image: "registry.example/paddock/inference:1"}).spec!.template.spec!;
  const server = pod.containers.find((c) => c.name === CONTAINER.server) as ContainerSpec;
  const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, `/vol/${v.name}`]));
  const plan = planContainer(server, {
    namespace: "team-a",
    podName: "chat-0",
    podIP: "10.0.0.7",
    listenIP: "10.0.0.7",
    volumes,
    appRoot: "/app",
    secret: (name, key) => (key === "url" ? `rediss://:pw@${name}.example:6380` : `${name}-${key}`),
    configMap: () => undefined
  });
  return {env: plan.env, init: pod.initContainers?.find((c) => c.name === CONTAINER.fetchModel) as ContainerSpec | undefined};
}

describe("the operator's pod environment, parsed by the server", () => {
  it("configures every engine setting the spec names", () => {
    const {env} = serverEnv(svc({model: {uri: "https://models.example/llama-3b.Q4.gguf", sha256: "ab".repeat(32), name: "llama"}, engine: {parallelSlots: 8, contextSize: 4096, maxQueue: 10, threads: 3, requestTimeoutSeconds: 30, shutdownGraceSeconds: 12, gpuLayers: 20, promptCacheSize: "256Mi"}, resources: {gpus: 2}}));
    const config = loadServerConfig(env, cpu);
    expect(config.promptCache.budgetBytes).toBe(256 * 2 ** 20);
    expect(config).toMatchObject({
      // The shared model cache: the file sits under the model's digest in the claim.
      modelPath: expect.stringMatching(/^\/vol\/model\/[0-9a-f]{16}\/llama-3b\.Q4\.gguf$/) as unknown as string,
      modelName: "llama",
      port: DEFAULT_PORT,
      parallelSlots: 8,
      contextSize: 4096,
      maxQueue: 10,
      threads: 3,
      requestTimeoutMs: 30_000,
      shutdownGraceMs: 12_000,
      gpuLayers: 20,
      modelSha256: "ab".repeat(32)
    });
    expect(config.gpu).not.toBe("off");
    expect(config.gpuRequired).toBe(true);
  });

  it("lets a prompt that fills the context through the router and the server alike (a 200k-token one got 413 at a fixed 1 MiB)", () => {
    const s = svc({engine: {contextSize: 200_000}});
    const server = loadServerConfig(serverEnv(s).env, cpu);
    const routerEnv = Object.fromEntries(desiredRouterDeployment(s, {image: "op:1"}).spec!.template.spec!.containers[0]!.env!.flatMap((e) => (e.value === undefined ? [] : [[e.name, e.value]])));
    const router = loadRouterConfig({...routerEnv, ROUTER_NAMESPACE: "team-a", POD_NAME: "chat-router-0"});
    // A 200k-token prompt is about 800 KB of English, and up to 16 bytes a token escaped.
    expect(server.maxRequestBytes).toBeGreaterThanOrEqual(200_000 * 16);
    expect(router.maxRequestBytes).toBe(server.maxRequestBytes);
    // The small default context keeps the 1 MiB floor's order; a 1M-token context stays within the ceiling both accept.
    expect(loadServerConfig(serverEnv(svc({})).env, cpu).maxRequestBytes).toBeLessThan(2 * 2 ** 20);
    expect(loadServerConfig(serverEnv(svc({engine: {contextSize: 1_048_576}})).env, cpu).maxRequestBytes).toBeLessThanOrEqual(64 * 2 ** 20);
  });

  it("gives each replica a 1Gi prompt cache unless told otherwise, and none for 0", () => {
    expect(loadServerConfig(serverEnv(svc({})).env, cpu).promptCache.budgetBytes).toBe(2 ** 30);
    expect(loadServerConfig(serverEnv(svc({engine: {promptCacheSize: "0"}})).env, cpu).promptCache.budgetBytes).toBe(0);
  });

  it("runs CPU-only services with the GPU off, and nothing required", () => {
    expect(loadServerConfig(serverEnv(svc({resources: {gpus: 0}})).env, cpu)).toMatchObject({gpu: "off", gpuRequired: false});
  });

  it("wires the managed Redis with its password, in a cache namespace of the service's own", () => {
    const config = loadServerConfig(serverEnv(svc({})).env, cpu);
    expect(config.cache).toMatchObject({mode: "deterministic", namespace: "team-a.chat", redisUrl: "redis://:paddock-redis-password@paddock-redis.team-a.svc:6379"});
  });

  it("passes an external Redis URL from a Secret, and turns the cache off", () => {
    expect(loadServerConfig(serverEnv(svc({cache: {redis: {secretRef: {name: "r", key: "url"}}}})).env, cpu).cache.redisUrl).toBe("rediss://:pw@r.example:6380");
    expect(loadServerConfig(serverEnv(svc({cache: {enabled: false}})).env, cpu).cache.mode).toBe("off");
  });

  it("points API_KEYS_FILE at the mounted Secret, which the server reads at start", () => {
    const {env} = serverEnv(svc({auth: {apiKeySecretRef: {name: "keys", key: "tokens"}}}));
    const read: string[] = [];
    const config = loadServerConfig(env, cpu, (path) => (read.push(path), "sk-1\n"));
    expect(config.apiKeysFile).toBe("/vol/api-keys/keys");
    expect(read).toEqual(["/vol/api-keys/keys"]);
  });

  it("gives the download program the variables it reads, and runs it by its entry point", () => {
    const {init} = serverEnv(svc({model: {uri: "https://models.example/x.gguf", sha256: "cd".repeat(32), cache: {mode: "None"}}}));
    expect(init?.command).toEqual(["node", IMAGE_ENTRY.fetchModel]);
    expect(Object.fromEntries((init?.env ?? []).map((e) => [e.name, e.value]))).toEqual({[FETCH_ENV.url]: "https://models.example/x.gguf", [FETCH_ENV.path]: "/models/x.gguf", [FETCH_ENV.sha256]: "cd".repeat(32), [FETCH_ENV.stallTimeoutSeconds]: "60"});
    expect(FETCH_ENV.path).toBe(ENV.modelPath);
  });

  it("has the download Job write the very file the replicas' MODEL_PATH names", () => {
    const s = svc({model: {uri: "https://models.example/x.gguf", sha256: "cd".repeat(32)}});
    const cache = modelCache(s)!;
    const job = desiredDownloadJob(s, cache, {image: "registry.example/paddock/inference:1"}).spec!.template.spec!;
    const fetcher = job.containers[0]!;
    expect(fetcher.command).toEqual(["node", IMAGE_ENTRY.fetchModel]);
    const jobPath = fetcher.env!.find((e) => e.name === FETCH_ENV.path)!.value!;
    const jobClaim = job.volumes!.find((v) => v.name === "model")!.persistentVolumeClaim!.claimName;
    expect(fetcher.volumeMounts).toContainEqual({name: "model", mountPath: "/models"});
    const pod = desiredDeployment(s, {image: "registry.example/paddock/inference:1"}).spec!.template.spec!;
    expect(pod.volumes!.find((v) => v.name === "model")!.persistentVolumeClaim).toEqual({claimName: jobClaim, readOnly: true});
    expect(serverEnv(s).env[ENV.modelPath]).toBe(jobPath.replace(/^\/models/, "/vol/model"));
  });
});
