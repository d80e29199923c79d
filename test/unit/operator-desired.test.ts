import {parseLlmService, type LlmService} from "../../operator/src/api/llmservice.js";
import {desiredDeployment} from "../../operator/src/desired/deployment.js";
import {endpoint} from "../../operator/src/desired/meta.js";
import {desiredRedis} from "../../operator/src/desired/redis.js";
import {desiredPdb, desiredService} from "../../operator/src/desired/service.js";
import {replicasWanted} from "../../operator/src/status/replicas.js";

function svc(spec: Record<string, unknown>, status: Record<string, unknown> = {}): LlmService {
  return parseLlmService({metadata: {name: "m", namespace: "ns", uid: "u-1", generation: 3}, spec: {model: {uri: "https://h/x.gguf"}, ...spec}, status});
}

const pod = (s: LlmService) => desiredDeployment(s, {image: "default/img:1"}).spec!.template.spec!;
const env = (s: LlmService) => Object.fromEntries(pod(s).containers[0]!.env!.map((e) => [e.name, e.value ?? e.valueFrom]));

describe("desired Deployment", () => {
  it("downloads https models with an init container into a volume the server reads", () => {
    const p = pod(svc({model: {uri: "https://h/models/llama.gguf", sha256: "a".repeat(64), cache: {mode: "None"}}}));
    expect(p.initContainers?.[0]).toMatchObject({name: "fetch-model"});
    expect(Object.fromEntries(p.initContainers![0]!.env!.map((e) => [e.name, e.value]))).toEqual({MODEL_URL: "https://h/models/llama.gguf", MODEL_PATH: "/models/llama.gguf", MODEL_SHA256: "a".repeat(64), STALL_TIMEOUT_SECONDS: "60"});
    expect(p.volumes).toContainEqual({name: "model", emptyDir: {}});
    expect(p.containers[0]!.volumeMounts).toContainEqual({name: "model", mountPath: "/models", readOnly: true});
  });

  it("downloads hf:// models through the operator's hub endpoint, with the token from its Secret", () => {
    const s = svc({model: {uri: "hf://org/repo/sub/q4.gguf@v1", tokenSecretRef: {name: "hf", key: "token"}, stallTimeoutSeconds: 30, cache: {mode: "None"}}});
    const init = desiredDeployment(s, {image: "default/img:1", hfEndpoint: "https://mirror.example"}).spec!.template.spec!.initContainers![0]!;
    expect(Object.fromEntries(init.env!.map((e) => [e.name, e.value ?? e.valueFrom]))).toEqual({
      MODEL_URL: "hf://org/repo/sub/q4.gguf@v1",
      MODEL_PATH: "/models/q4.gguf",
      STALL_TIMEOUT_SECONDS: "30",
      HF_ENDPOINT: "https://mirror.example",
      HF_TOKEN: {secretKeyRef: {name: "hf", key: "token"}}
    });
    expect(env(s)["MODEL_PATH"]).toBe("/models/q4.gguf");
  });

  it("mounts a PVC read-only for pvc:// models", () => {
    const p = pod(svc({model: {uri: "pvc://weights/llama/3b.gguf"}}));
    expect(p.initContainers).toBeUndefined();
    expect(p.volumes).toContainEqual({name: "model", persistentVolumeClaim: {claimName: "weights", readOnly: true}});
    expect(env(svc({model: {uri: "pvc://weights/llama/3b.gguf"}}))["MODEL_PATH"]).toBe("/models/llama/3b.gguf");
  });

  it("uses file:// paths as they are, mounting the folder from the node only with hostPath", () => {
    const baked = svc({model: {uri: "file:///opt/models/x.gguf"}});
    expect(pod(baked).volumes!.map((v) => v.name)).toEqual(["tmp"]);
    expect(env(baked)["MODEL_PATH"]).toBe("/opt/models/x.gguf");
    const host = pod(svc({model: {uri: "file:///data/models/x.gguf", hostPath: true}}));
    expect(host.volumes).toContainEqual({name: "model", hostPath: {path: "/data/models", type: "Directory"}});
  });

  it("limits GPUs by the configured resource name, and runs CPU-only services with GPU=off", () => {
    expect(pod(svc({resources: {gpus: 2, gpuResourceName: "amd.com/gpu"}})).containers[0]!.resources!.limits).toEqual({"amd.com/gpu": "2"});
    const cpu = svc({resources: {gpus: 0, cpu: "4", memory: "8Gi"}});
    expect(pod(cpu).containers[0]!.resources).toEqual({limits: {memory: "8Gi"}, requests: {memory: "8Gi", cpu: "4"}});
    expect(env(cpu)["GPU"]).toBe("off");
  });

  it("mounts API keys from the Secret and points API_KEYS_FILE at them", () => {
    const s = svc({auth: {apiKeySecretRef: {name: "keys", key: "tokens"}}});
    expect(pod(s).volumes).toContainEqual({name: "api-keys", secret: {secretName: "keys", items: [{key: "tokens", path: "keys"}]}});
    expect(env(s)["API_KEYS_FILE"]).toBe("/etc/paddock/api-keys/keys");
  });

  it("wires the cache: managed Redis, an external URL, a Secret-held URL, or off", () => {
    expect(env(svc({}))).toMatchObject({CACHE_NAMESPACE: "ns.m", REDIS_URL: "redis://:$(PADDOCK_REDIS_PASSWORD)@paddock-redis.ns.svc:6379"});
    const names = pod(svc({})).containers[0]!.env!.map((e) => e.name);
    expect(names.indexOf("PADDOCK_REDIS_PASSWORD")).toBeLessThan(names.indexOf("REDIS_URL"));
    expect(env(svc({cache: {redis: {url: "rediss://r:6380"}}}))["REDIS_URL"]).toBe("rediss://r:6380");
    expect(env(svc({cache: {redis: {secretRef: {name: "r", key: "url"}}}}))["REDIS_URL"]).toEqual({secretKeyRef: {name: "r", key: "url"}});
    expect(env(svc({cache: {enabled: false}}))).toMatchObject({CACHE_MODE: "off"});
    expect(env(svc({cache: {enabled: false}}))["REDIS_URL"]).toBeUndefined();
  });

  it("drains within the pod's grace period and never sets replicas itself", () => {
    const s = svc({engine: {shutdownGraceSeconds: 45}});
    expect(pod(s).terminationGracePeriodSeconds).toBeGreaterThan(45 + 5);
    expect(env(s)["SHUTDOWN_GRACE_SECONDS"]).toBe("45");
    expect(desiredDeployment(s, {image: "i"}).spec!.replicas).toBeUndefined();
  });

  it("passes scheduling constraints through", () => {
    const p = pod(svc({scheduling: {nodeSelector: {pool: "h100"}, tolerations: [{key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule"}]}}));
    expect(p.nodeSelector).toEqual({pool: "h100"});
    expect(p.tolerations).toHaveLength(1);
  });

  it("uses spec.image over the operator's default", () => {
    expect(pod(svc({image: "mine:2"})).containers[0]!.image).toBe("mine:2");
    expect(pod(svc({})).containers[0]!.image).toBe("default/img:1");
  });

  it("runs services without GPUs (and their download container) on the CPU image, others on the CUDA one", () => {
    const defaults = {image: "inference:1", cpuImage: "inference:1-cpu"};
    const cpu = desiredDeployment(svc({resources: {gpus: 0}, model: {uri: "https://h/x.gguf", cache: {mode: "None"}}}), defaults).spec!.template.spec!;
    expect(cpu.containers[0]!.image).toBe("inference:1-cpu");
    expect(cpu.initContainers![0]!.image).toBe("inference:1-cpu");
    expect(desiredDeployment(svc({resources: {gpus: 1}}), defaults).spec!.template.spec!.containers[0]!.image).toBe("inference:1");
    expect(desiredDeployment(svc({resources: {gpus: 0}, image: "mine:2"}), defaults).spec!.template.spec!.containers[0]!.image).toBe("mine:2");
  });
});

describe("Service, PDB, Redis and replicas", () => {
  it("exposes spec.service.port in front of the servers' port 8000", () => {
    expect(desiredService(svc({service: {port: 8080, type: "LoadBalancer"}}))).toMatchObject({spec: {type: "LoadBalancer", ports: [{port: 8080, targetPort: 8000}]}});
    expect(endpoint(svc({}))).toBe("http://m.ns.svc");
    expect(endpoint(svc({service: {port: 8080}}))).toBe("http://m.ns.svc:8080");
  });

  it("adds a PDB only with more than one replica", () => {
    expect(desiredPdb(svc({}), 1)).toBeUndefined();
    expect(desiredPdb(svc({}), 2)).toMatchObject({spec: {maxUnavailable: 1}});
  });

  it("gives the shared Redis a non-controller owner reference and a NetworkPolicy for cache clients only", () => {
    const objects = desiredRedis(svc({}), {image: "redis:7", maxMemory: "64mb"});
    expect(objects.map((o) => o.kind)).toEqual(["Deployment", "Service", "NetworkPolicy"]);
    expect(objects.every((o) => o.metadata!.ownerReferences![0]!.controller === false)).toBe(true);
    expect(objects[2].spec.ingress).toEqual([{from: [{podSelector: {matchLabels: {"llm.paddock.dev/cache-client": "true"}}}], ports: [{port: 6379, protocol: "TCP"}]}]);
  });

  it("wants spec.replicas.desired (else min) without autoscaling, clamped to [min, max]", () => {
    expect(replicasWanted(svc({replicas: {min: 2, max: 5}}), 4)).toBe(2);
    expect(replicasWanted(svc({replicas: {min: 1, max: 5, desired: 3}}), 1)).toBe(3);
  });

  it("keeps the count the autoscaler set on the Deployment, pulled into [min, max], with autoscaling", () => {
    const auto = {replicas: {min: 2, max: 4}, autoscaling: {enabled: true}};
    // A stale status in the reconciler's cache must not undo the autoscaler's latest scale.
    expect(replicasWanted(svc(auto, {desiredReplicas: 2}), 3)).toBe(3);
    expect(replicasWanted(svc(auto), undefined)).toBe(2);
    expect(replicasWanted(svc(auto), 1)).toBe(2);
    expect(replicasWanted(svc(auto), 9)).toBe(4);
  });
});
