import {resolve} from "node:path";
import {eventually, useCluster, type TestCluster} from "../helpers/cluster.js";
import {example, llmServices} from "../helpers/llmservices.js";
import {OperatorProcess} from "../../dev/processes/operator.js";
import {REPO_ROOT} from "../../dev/paths.js";

/**
 * The operator as a process against the real control plane (etcd, kube-apiserver,
 * controller-manager, scheduler; KWOK plays kubelets, since no container runtime runs here).
 */
interface Obj {
  metadata: {name: string; uid: string; generation?: number; labels?: Record<string, string>; ownerReferences?: Array<{kind: string; name: string; uid: string; controller?: boolean}>};
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}
type Deployment = Obj & {
  spec: {replicas: number; strategy: unknown; template: {metadata: {annotations: Record<string, string>}; spec: {containers: Array<{image: string; env: Array<{name: string; value?: string}>; resources: {limits: Record<string, string>}; securityContext: Record<string, unknown>; startupProbe: unknown; readinessProbe: unknown; livenessProbe: unknown}>; securityContext: Record<string, unknown>; terminationGracePeriodSeconds: number}}};
  status: {readyReplicas?: number; updatedReplicas?: number};
};


describe("operator", () => {
  let k: TestCluster;
  let operator: OperatorProcess;
  const {namespace, get, tryGet, apply, condition, waitReady, cleanup} = llmServices(() => k, "op");

  beforeAll(async () => {
    k = await useCluster();
    k.kubectl(["apply", "-f", resolve(REPO_ROOT, "crds/llmservices.yaml")]);
    await eventually(() => k.kubectlResult(["get", "llms", "-A"]).status === 0, 30_000, "CRD established");
    operator = OperatorProcess.start(k.kubeconfig, ["--leader-elect=false"]);
    await operator.waitFor("leading: starting controllers");
  }, 600_000);
  afterAll(async () => {
    await operator?.stop();
    cleanup();
  });

  it("creates the Deployment, Service, Redis and Secret with owner references, and reaches Ready", async () => {
    const n = namespace();
    expect(apply(n, "tiny", example.spec).status).toBe(0);
    await waitReady(n, "tiny");
    const svc = get<Obj>("llms", "tiny", n);
    const d = get<Deployment>("deployment", "tiny", n);
    const container = d.spec.template.spec.containers[0]!;
    const env = Object.fromEntries(container.env.map((e) => [e.name, e.value]));
    expect(d.metadata.ownerReferences).toEqual([expect.objectContaining({kind: "LlmService", name: "tiny", uid: svc.metadata.uid, controller: true})]);
    expect(container.resources.limits["nvidia.com/gpu"]).toBe("1");
    expect(env).toMatchObject({MODEL_PATH: "/models/stories260K.gguf", MODEL_NAME: "tiny", PARALLEL_SLOTS: "4", CACHE_MODE: "deterministic", CACHE_NAMESPACE: `${n}.tiny`, MODEL_SHA256: example.spec["model"] && (example.spec["model"] as {sha256: string}).sha256});
    expect(env["REDIS_URL"]).toBe(`redis://:$(PADDOCK_REDIS_PASSWORD)@paddock-redis.${n}.svc:6379`);
    expect(d.spec.template.spec.securityContext).toMatchObject({runAsNonRoot: true});
    expect(container.securityContext).toMatchObject({allowPrivilegeEscalation: false, readOnlyRootFilesystem: true});
    expect(d.spec.template.metadata.annotations["prometheus.io/scrape"]).toBe("true");
    expect(d.spec.strategy).toEqual({type: "RollingUpdate", rollingUpdate: {maxSurge: 0, maxUnavailable: 1}});
    for (const probe of [container.startupProbe, container.readinessProbe, container.livenessProbe]) expect(probe).toBeDefined();

    const service = get<Obj>("service", "tiny", n);
    expect(service.metadata.ownerReferences?.[0]?.uid).toBe(svc.metadata.uid);
    for (const [kind, name] of [["deployment", "paddock-redis"], ["service", "paddock-redis"], ["secret", "paddock-redis"], ["networkpolicy", "paddock-redis"]] as const) {
      expect(get<Obj>(kind, name, n).metadata.ownerReferences).toEqual([expect.objectContaining({uid: svc.metadata.uid, controller: false})]);
    }
    const pods = JSON.parse(k.kubectl(["get", "pods", "-n", n, "-l", "llm.paddock.dev/service=tiny", "-o", "json"])) as {items: Array<{spec: {nodeName: string}}>};
    expect(pods.items.map((p) => p.spec.nodeName)).toEqual([expect.stringMatching(/^paddock-gpu-/)]);
    expect(get<Obj>("llms", "tiny", n).status).toMatchObject({replicas: 1, readyReplicas: 1, desiredReplicas: 1, endpoint: `http://tiny.${n}.svc`, selector: "llm.paddock.dev/service=tiny", observedGeneration: 1});
  });

  it("shares one Redis between services of a namespace and keeps it until the last one is gone", async () => {
    const n = namespace();
    apply(n, "a", example.spec);
    apply(n, "b", example.spec);
    await waitReady(n, "a");
    await waitReady(n, "b");
    await eventually(() => get<Obj>("deployment", "paddock-redis", n).metadata.ownerReferences?.length === 2, 20_000, "two owners");
    k.kubectl(["delete", "llms", "a", "-n", n]);
    // The garbage collector drops a deleted owner's reference; right after the CRD appears it
    // first needs its 30 s discovery refresh to resolve LlmService owners.
    await eventually(() => get<Obj>("deployment", "paddock-redis", n).metadata.ownerReferences?.length === 1, 150_000, "one owner left");
    expect(tryGet("deployment", "a", n)).toBeUndefined();
    k.kubectl(["delete", "llms", "b", "-n", n]);
    await eventually(() => ["deployment/b", "service/b", "deployment/paddock-redis", "service/paddock-redis", "secret/paddock-redis", "networkpolicy/paddock-redis"].every((r) => {
      const [kind, name] = r.split("/") as [string, string];
      return tryGet(kind, name, n) === undefined;
    }), 150_000, "everything garbage-collected");
  }, 360_000);

  it("rolls the Deployment when the spec changes, and reports the change as observed", async () => {
    const n = namespace();
    apply(n, "roll", example.spec);
    await waitReady(n, "roll");
    const before = get<Deployment>("deployment", "roll", n).metadata.generation!;
    apply(n, "roll", {...example.spec, engine: {parallelSlots: 8}});
    await eventually(() => {
      const d = get<Deployment>("deployment", "roll", n);
      const slots = d.spec.template.spec.containers[0]!.env.find((e) => e.name === "PARALLEL_SLOTS")?.value;
      return d.metadata.generation! > before && slots === "8" && d.status.updatedReplicas === 1 && d.status.readyReplicas === 1;
    }, 60_000, "rolled out");
    await eventually(() => get<Obj>("llms", "roll", n).status?.["observedGeneration"] === 2, 30_000, "observedGeneration 2");
  });

  it("reports InsufficientGPU when no node has enough GPUs, instead of hanging silently", async () => {
    const n = namespace();
    apply(n, "huge", {...example.spec, resources: {gpus: 9}});
    const degraded = await eventually(() => {
      const c = condition(n, "huge", "Degraded");
      return c?.reason === "InsufficientGPU" ? c : undefined;
    }, 60_000, "InsufficientGPU");
    expect(degraded.status).toBe("True");
    expect(degraded.message).toContain("Insufficient nvidia.com/gpu");
    // Ready says RouterStarting until the router pods are ready, then the problem.
    await eventually(() => condition(n, "huge", "Ready")?.reason === "InsufficientGPU", 30_000, "Ready reason InsufficientGPU");
    expect(condition(n, "huge", "Ready")).toMatchObject({status: "False", reason: "InsufficientGPU"});
    const events = k.kubectl(["get", "events", "-n", n, "--field-selector", "involvedObject.kind=LlmService,reason=InsufficientGPU", "-o", "name"]);
    expect(events.trim()).not.toBe("");
  });

  const model = example.spec["model"];
  it.each([
    ["a bad URI scheme", {model: {uri: "ftp://example.com/x.gguf"}}, "spec.model.uri must start with https://, hf://, pvc:// or file:///"],
    ["an hf:// URI without a repo", {model: {uri: "hf://org/x.gguf"}}, "spec.model.uri must be hf://<org>/<repo>/<path>.gguf[@<revision>]"],
    ["min > max", {model, replicas: {min: 3, max: 1}}, "spec.replicas.min must be less than or equal to spec.replicas.max"],
    ["zero slots", {model, engine: {parallelSlots: 0}}, "spec.engine.parallelSlots"],
    ["a bad gpuLayers", {model, engine: {gpuLayers: "lots"}}, "spec.engine.gpuLayers must be a non-negative integer, 'auto' or 'max'"],
    ["a non-Redis cache URL", {model, cache: {redis: {url: "http://x"}}}, "spec.cache.redis.url must start with redis:// or rediss://"],
    ["an empty external Redis", {model, cache: {redis: {}}}, "spec.cache.redis needs exactly one of url or secretRef"],
    ["a Prometheus URL without scheme", {model, autoscaling: {prometheusURL: "prom:9090"}}, "spec.autoscaling.prometheusURL must be an http:// or https:// URL"],
    ["an unknown field", {model, surprise: true}, 'unknown field "spec.surprise"'],
    ["no model", {}, "spec.model: Required value"],
    ["scale to zero without autoscaling", {model, replicas: {min: 0, max: 2}}, "spec.replicas.min: 0 (scale to zero) needs spec.autoscaling.enabled and spec.routing.enabled"],
    ["an unknown routing strategy", {model, routing: {strategy: "Random"}}, "spec.routing.strategy: Unsupported value"]
  ])("rejects %s at kubectl apply, naming the field", (_what, spec, message) => {
    const r = apply("default", "invalid", spec);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  it("refuses to change the served model name", async () => {
    const n = namespace();
    expect(apply(n, "named", {...example.spec, model: {...(example.spec["model"] as object), name: "alpha"}}).status).toBe(0);
    const r = apply(n, "named", {...example.spec, model: {...(example.spec["model"] as object), name: "beta"}});
    expect(r.stderr).toContain("spec.model.name is immutable");
  });

  it("reverts manual changes to fields it owns, including replicas", async () => {
    const n = namespace();
    apply(n, "guarded", example.spec);
    await waitReady(n, "guarded");
    k.kubectl(["set", "image", "deployment/guarded", "server=attacker/image:latest", "-n", n]);
    k.kubectl(["scale", "deployment/guarded", "--replicas=5", "-n", n]);
    await eventually(() => {
      const d = get<Deployment>("deployment", "guarded", n);
      return d.spec.template.spec.containers[0]!.image !== "attacker/image:latest" && d.spec.replicas === 1;
    }, 30_000, "reverted");
  });

  it("restores a removed label or owner reference, edits that change no generation", async () => {
    const n = namespace();
    apply(n, "relabelled", example.spec);
    await waitReady(n, "relabelled");
    const before = get<Deployment>("deployment", "relabelled", n);
    k.kubectl(["label", "deployment/relabelled", "llm.paddock.dev/service-", "-n", n]);
    k.kubectl(["patch", "deployment/relabelled", "-n", n, "--type=json", "-p", JSON.stringify([{op: "remove", path: "/metadata/ownerReferences"}])]);
    expect(get<Deployment>("deployment", "relabelled", n).metadata.generation).toBe(before.metadata.generation);
    await eventually(() => {
      const d = get<Deployment>("deployment", "relabelled", n);
      return d.metadata.labels?.["llm.paddock.dev/service"] === "relabelled" && d.metadata.ownerReferences?.some((r) => r.kind === "LlmService" && r.controller === true);
    }, 30_000, "label and owner reference restored");
  });

  it("rejects malformed tolerations and affinity at kubectl apply, with the field named", () => {
    const bad = apply("default", "badsched", {...example.spec, scheduling: {tolerations: [{key: "gpu", operator: "Maybe"}]}});
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain("spec.scheduling.tolerations[0].operator");
    const affinity = apply("default", "badsched", {...example.spec, scheduling: {affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: "pool", operator: "Near"}]}]}}}}});
    expect(affinity.status).not.toBe(0);
    expect(affinity.stderr).toContain("operator");
    const missing = apply("default", "badsched", {...example.spec, scheduling: {affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: {matchLabels: {a: "b"}}}]}}}});
    expect(missing.stderr).toContain("topologyKey");
  });

  it("reports an object the API server refuses as ApplyFailed, with its message and an Event", async () => {
    const n = namespace();
    // A nodeSelector key the CRD accepts (any string) but the Deployment's validation does not.
    expect(apply(n, "refused", {...example.spec, scheduling: {nodeSelector: {"not a label key!": "x"}}}).status).toBe(0);
    const degraded = await eventually(() => {
      const c = condition(n, "refused", "Degraded");
      return c?.reason === "ApplyFailed" ? c : undefined;
    }, 30_000, "ApplyFailed");
    expect(degraded.status).toBe("True");
    expect(degraded.message).toMatch(/nodeSelector/);
    expect(condition(n, "refused", "Ready")).toMatchObject({status: "False", reason: "ApplyFailed"});
    await eventually(() => k.kubectl(["get", "events", "-n", n, "--field-selector", "involvedObject.kind=LlmService,reason=ApplyFailed", "-o", "name"]).trim() !== "", 15_000, "ApplyFailed event");
    // Fixing the spec clears it.
    apply(n, "refused", example.spec);
    await waitReady(n, "refused");
    expect(condition(n, "refused", "Degraded")).toMatchObject({status: "False", reason: "AsExpected"});
  });

  it("scales through the LlmService's scale subresource and adds a PodDisruptionBudget", async () => {
    const n = namespace();
    apply(n, "scaled", example.spec);
    await waitReady(n, "scaled");
    k.kubectl(["scale", "llms/scaled", "--replicas=2", "-n", n]);
    await eventually(() => get<Deployment>("deployment", "scaled", n).status.readyReplicas === 2, 30_000, "2 ready");
    expect(get<Obj>("pdb", "scaled", n).spec).toMatchObject({maxUnavailable: 1});
    await eventually(() => get<Obj>("llms", "scaled", n).status?.["readyReplicas"] === 2, 30_000, "status counts 2");
    expect(k.kubectlResult(["scale", "llms/scaled", "--replicas=5", "-n", n]).stderr).toContain("spec.replicas.desired must be between");
  });

  it("converges after being killed mid-reconcile, with no duplicates", async () => {
    const n = namespace();
    await operator.kill();
    for (let i = 0; i < 6; i++) apply(n, `s${i}`, example.spec);
    const crashing = OperatorProcess.start(k.kubeconfig, ["--leader-elect=false"]);
    // Killed once it has begun writing and before it has finished: mid-reconcile.
    const deploymentsIn = () => (JSON.parse(k.kubectl(["get", "deployments", "-n", n, "-o", "json"])) as {items: unknown[]}).items.length;
    await eventually(() => deploymentsIn() > 0, 30_000, "the first Deployment written");
    await crashing.kill();
    expect(deploymentsIn()).toBeLessThan(13); // 6 model + 6 router Deployments + Redis when done
    operator = OperatorProcess.start(k.kubeconfig, ["--leader-elect=false"]);
    for (let i = 0; i < 6; i++) await waitReady(n, `s${i}`);
    const deployments = JSON.parse(k.kubectl(["get", "deployments", "-n", n, "-o", "json"])) as {items: Obj[]};
    const names = Array.from({length: 6}, (_, i) => [`s${i}`, `s${i}-router`]).flat();
    expect(deployments.items.map((d) => d.metadata.name).sort()).toEqual(["paddock-redis", ...names].sort());
    const rs = JSON.parse(k.kubectl(["get", "replicasets", "-n", n, "-o", "json"])) as {items: Obj[]};
    expect(rs.items).toHaveLength(13);
    const secrets = JSON.parse(k.kubectl(["get", "secrets", "-n", n, "-o", "json"])) as {items: Obj[]};
    expect(secrets.items.filter((s) => s.metadata.name === "paddock-redis")).toHaveLength(1);
  });
});
