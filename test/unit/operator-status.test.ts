import {readFileSync} from "node:fs";
import {resolve} from "node:path";
import {loadOperatorConfig, OperatorConfigError} from "../../operator/src/config.js";
import {renderCrd} from "../../operator/src/api/generate-crd.js";
import {nextConditions, transitions} from "../../operator/src/status/conditions.js";
import {podProblems, type Observation} from "../../operator/src/status/observe.js";
import {REPO_ROOT} from "../../dev/paths.js";

const base: Observation = {
  generation: 2,
  desiredReplicas: 2,
  deployment: {generation: 5, observedGeneration: 5, replicas: 2, readyReplicas: 2, updatedReplicas: 2, conditions: []},
  pods: {insufficientGpu: 0},
  model: {ready: true, failed: false, reason: "NoDownload", message: "the pods read the model from file:///models/x.gguf"}
};
const at = new Date("2026-01-01T00:00:00Z");
const byType = (o: Observation, previous = [] as ReturnType<typeof nextConditions>) => Object.fromEntries(nextConditions(o, previous, at).map((c) => [c.type, c]));

describe("conditions", () => {
  it("is Ready, not Progressing and not Degraded when every replica is up", () => {
    const c = byType(base);
    expect([c["Ready"]!.status, c["Progressing"]!.status, c["Degraded"]!.status]).toEqual(["True", "False", "False"]);
    expect(c["Ready"]!.observedGeneration).toBe(2);
  });

  it("explains a service stuck on GPUs", () => {
    const c = byType({...base, deployment: {...base.deployment!, readyReplicas: 0}, pods: {insufficientGpu: 2, insufficientGpuMessage: "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}});
    expect(c["Ready"]).toMatchObject({status: "False", reason: "InsufficientGPU"});
    expect(c["Degraded"]).toMatchObject({status: "True", reason: "InsufficientGPU", message: expect.stringContaining("2 pod(s) cannot be scheduled")});
  });

  it("puts a failed model download first, and reports a cache outage without making the service unready", () => {
    expect(byType({...base, pods: {insufficientGpu: 1, modelDownloadFailed: "sha256 mismatch"}})["Degraded"]).toMatchObject({reason: "ModelDownloadFailed", message: "sha256 mismatch"});
    const cache = byType({...base, managedRedisReady: false});
    expect(cache["Degraded"]).toMatchObject({status: "True", reason: "CacheUnavailable"});
    expect(cache["Ready"]!.status).toBe("True");
  });

  it("is Progressing while a rollout or scale is under way", () => {
    expect(byType({...base, deployment: {...base.deployment!, updatedReplicas: 1}})["Progressing"]).toMatchObject({status: "True", reason: "RollingOut"});
    expect(byType({...base, deployment: {...base.deployment!, observedGeneration: 4}})["Progressing"]).toMatchObject({status: "True", reason: "RollingOut"});
    expect(byType({...base, desiredReplicas: 3})["Progressing"]).toMatchObject({status: "True"});
  });

  it("keeps lastTransitionTime while a status holds, and lists transitions for events", () => {
    const first = nextConditions(base, [], new Date("2026-01-01T00:00:00Z"));
    const same = nextConditions(base, first, new Date("2026-01-01T01:00:00Z"));
    expect(same.map((c) => c.lastTransitionTime)).toEqual(first.map((c) => c.lastTransitionTime));
    expect(transitions(first, same)).toEqual([]);
    const broken = nextConditions({...base, deployment: {...base.deployment!, readyReplicas: 0}, pods: {insufficientGpu: 0, crashLooping: "boom"}}, same, new Date("2026-01-01T02:00:00Z"));
    expect(transitions(same, broken).map((c) => `${c.type}=${c.status}/${c.reason}`)).toEqual(["Ready=False/ServerCrashLooping", "Progressing=True/Scaling", "Degraded=True/ServerCrashLooping"]);
    expect(broken.find((c) => c.type === "Ready")!.lastTransitionTime).toBe("2026-01-01T02:00:00.000Z");
  });
});

describe("pod problems", () => {
  const container = {image: "i", imageID: "", ready: false, restartCount: 1};
  it("recognizes unschedulable GPU pods, failed downloads and crash loops", () => {
    const problems = podProblems(
      [
        {status: {conditions: [{type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]}},
        {status: {initContainerStatuses: [{...container, name: "fetch-model", lastState: {terminated: {exitCode: 1, message: "HTTP 404"}}}]}},
        {status: {containerStatuses: [{...container, name: "server", state: {waiting: {reason: "CrashLoopBackOff"}}, lastState: {terminated: {exitCode: 1, message: "out of memory"}}}]}},
        {status: {conditions: [{type: "PodScheduled", status: "False", reason: "Unschedulable", message: "0/3 nodes are available: 3 Insufficient memory."}]}}
      ],
      "nvidia.com/gpu"
    );
    expect(problems).toEqual({insufficientGpu: 1, insufficientGpuMessage: "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.", modelDownloadFailed: "HTTP 404", crashLooping: "out of memory"});
  });
});

describe("CRD and operator config", () => {
  it("keeps crds/llmservices.yaml identical to what the zod schema generates (run `npm run crds`)", () => {
    expect(readFileSync(resolve(REPO_ROOT, "crds/llmservices.yaml"), "utf8")).toBe(renderCrd());
  });

  it("reads flags over environment variables and rejects unknown flags by name", () => {
    const c = loadOperatorConfig(["--watch-namespaces=a, b", "--concurrency=8"], {PADDOCK_CONCURRENCY: "2", PADDOCK_LEADER_ELECT: "false", POD_NAME: "p", POD_NAMESPACE: "ops"});
    expect(c).toMatchObject({"watch-namespaces": ["a", "b"], concurrency: 8, "leader-elect": false, identity: "p", leaderElectionNamespace: "ops"});
    expect(() => loadOperatorConfig(["--wach-namespaces=a"], {})).toThrow(OperatorConfigError);
    expect(() => loadOperatorConfig(["--prometheus-url=prom:9090"], {})).toThrow(/--prometheus-url/);
  });
});
