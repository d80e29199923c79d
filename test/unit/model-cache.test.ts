import type {V1Job, V1PersistentVolumeClaim, V1Pod} from "@kubernetes/client-node";
import {lastProgress, parseDownloadFailure, resolveModelUrl, shardUris} from "../../contract/model-download.js";
import {parseLlmService, type LlmService} from "../../operator/src/api/llmservice.js";
import {planModel, type ModelObservation} from "../../operator/src/controller/model-plan.js";
import {eventFor} from "../../operator/src/controller/plan.js";
import {claimSize, DOWNLOAD_INPUTS_ANNOTATION, downloadInputs, modelCache} from "../../operator/src/desired/model-cache.js";

const defaults = {image: "inference:1"};
const svc = (model: Record<string, unknown>, uid = "u-1"): LlmService => parseLlmService({metadata: {name: `s-${uid}`, namespace: "ns", uid, generation: 1}, spec: {model}});
const noProblems = {insufficientGpu: 0};
const observed = (o: Partial<ModelObservation> = {}): ModelObservation => ({objects: [], claim: undefined, job: undefined, pods: [], logTail: undefined, sizeError: undefined, sizeBytes: undefined, ...o});
const bound: V1PersistentVolumeClaim = {status: {phase: "Bound"}};
const runningPod = (name = "dl-1"): V1Pod => ({metadata: {name, creationTimestamp: "2026-12-03T10:00:00Z" as never}, status: {phase: "Running"}});

describe("the shared model cache", () => {
  const sha = "ab".repeat(32);
  const a = svc({uri: "hf://org/repo/q4.gguf", sha256: sha}, "u-1");

  it("keys claims and Jobs by the model's digest (else its URI): services naming one model share them", () => {
    const cache = modelCache(a)!;
    expect(cache).toEqual({key: sha.slice(0, 16), claimName: `paddock-model-${sha.slice(0, 16)}`, managedClaim: true, jobName: `paddock-model-${sha.slice(0, 16)}`, subPath: `${sha.slice(0, 16)}/q4.gguf`});
    expect(modelCache(svc({uri: "hf://org/repo/q4.gguf", sha256: sha}, "u-2"))).toEqual(cache);
    const byUri = modelCache(svc({uri: "hf://org/repo/q4.gguf@v2"}))!;
    expect(byUri.key).not.toBe(modelCache(svc({uri: "hf://org/repo/q4.gguf@v3"}))!.key);
    expect(modelCache(svc({uri: "hf://org/repo/q4.gguf", cache: {mode: "None"}}))).toBeUndefined();
    expect(modelCache(svc({uri: "file:///models/x.gguf"}))).toBeUndefined();
    expect(modelCache(svc({uri: "hf://org/repo/q4.gguf", cache: {claimName: "models"}}))).toMatchObject({claimName: "models", managedClaim: false});
  });

  it("sizes a claim from the model's length plus 10% and 128Mi", () => {
    expect(claimSize(1024 ** 3)).toBe("1255Mi");
    expect(claimSize(1_185_376)).toBe("130Mi");
  });

  it("creates the claim once the length is known, then the Job; replicas wait until the Job succeeded", () => {
    expect(planModel(a, observed(), undefined, noProblems, defaults)).toMatchObject({writes: {create: []}, deploymentAllowed: false, status: {phase: "Pending"}});
    const first = planModel(a, observed({sizeBytes: 1024 ** 3}), undefined, noProblems, defaults);
    expect(first.writes.create.map((o) => o.kind)).toEqual(["PersistentVolumeClaim"]);
    expect(first.writes.create[0]).toMatchObject({spec: {accessModes: ["ReadWriteOnce"], resources: {requests: {storage: "1255Mi"}}}, metadata: {ownerReferences: [{uid: "u-1", controller: false}]}});
    const claimed = planModel(a, observed({claim: bound, objects: [{kind: "PersistentVolumeClaim", name: modelCache(a)!.claimName, ownerUids: ["u-1"]}]}), undefined, noProblems, defaults);
    expect(claimed.writes.create.map((o) => o.kind)).toEqual(["Job"]);
    expect(claimed.deploymentAllowed).toBe(false);
    const done = planModel(a, observed({claim: bound, job: {status: {succeeded: 1}}}), undefined, noProblems, defaults);
    expect(done).toMatchObject({deploymentAllowed: true, status: {phase: "Ready", progress: "Ready"}, readiness: {ready: true, reason: "Downloaded"}});
  });

  it("asks for spec.model.cache.size when the host would not say the length", () => {
    const p = planModel(a, observed({sizeError: "cannot size the model's claim: HEAD x: HTTP 401; set spec.model.cache.size"}), undefined, noProblems, defaults);
    expect(p).toMatchObject({status: {phase: "Failed", reason: "SizeUnknown"}, readiness: {failed: true}});
    expect(planModel(svc({uri: "hf://org/repo/q4.gguf", sha256: sha, cache: {size: "20Gi"}}), observed(), undefined, noProblems, defaults).writes.create[0]).toMatchObject({spec: {resources: {requests: {storage: "20Gi"}}}});
  });

  it("reports progress from the download pod's last log line", () => {
    const log = '{"msg":"model resolving"}\n{"msg":"progress","bytes":471859200,"total":1048576000,"bytes_per_second":41943040,"eta_seconds":14}\n';
    const p = planModel(a, observed({claim: bound, job: {status: {active: 1}}, pods: [runningPod()], logTail: log}), undefined, noProblems, defaults);
    expect(p.status).toMatchObject({phase: "Downloading", progress: "Downloading 45%", bytes: 471859200, totalBytes: 1048576000, bytesPerSecond: 41943040, etaSeconds: 14, message: "450.0 MiB of 1000.0 MiB at 40.0 MiB/s, about 14 s left"});
    const verifying = planModel(a, observed({claim: bound, job: {status: {active: 1}}, pods: [runningPod()], logTail: '{"msg":"verifying","bytes":1000,"total":null,"bytes_per_second":0,"eta_seconds":null}'}), undefined, noProblems, defaults);
    expect(verifying.status).toMatchObject({phase: "Verifying"});
    const unbound = planModel(a, observed({claim: {status: {phase: "Pending"}}, job: {}, pods: []}), undefined, noProblems, defaults);
    expect(unbound.status).toMatchObject({phase: "Pending", message: expect.stringContaining("is Pending (not bound to a volume yet)")});
  });

  it("fails with the reason the download's termination message gives, and retries once the spec changes", () => {
    const failedPod: V1Pod = {metadata: {name: "dl-1"}, status: {phase: "Failed", containerStatuses: [{name: "fetch-model", image: "i", imageID: "", ready: false, restartCount: 0, state: {terminated: {exitCode: 1, message: "fetch-model: Unauthorized: GET hf://org/repo/q4.gguf: HTTP 401: a token is needed (spec.model.tokenSecretRef)"}}}]}};
    const failedJob = (inputs: string): V1Job => ({metadata: {annotations: {[DOWNLOAD_INPUTS_ANNOTATION]: inputs}}, status: {conditions: [{type: "Failed", status: "True", message: "backoff limit"}]}});
    const p = planModel(a, observed({claim: bound, job: failedJob(downloadInputs(a, defaults)), pods: [failedPod], objects: [{kind: "Job", name: modelCache(a)!.jobName, ownerUids: ["u-1"]}]}), undefined, noProblems, defaults);
    expect(p).toMatchObject({status: {phase: "Failed", progress: "Failed: Unauthorized", reason: "Unauthorized"}, readiness: {failed: true, message: "GET hf://org/repo/q4.gguf: HTTP 401: a token is needed (spec.model.tokenSecretRef)"}, writes: {delete: []}});
    const fixed = planModel(a, observed({claim: bound, job: failedJob("an older spec"), pods: [failedPod]}), undefined, noProblems, defaults);
    expect(fixed.writes.delete).toEqual([{apiVersion: "batch/v1", kind: "Job", metadata: {name: modelCache(a)!.jobName, namespace: "ns"}}]);
  });

  it("shares what another service created, and lets go of an old model's objects (a claim only once unmounted)", () => {
    const {claimName, jobName} = modelCache(a)!;
    const theirs = planModel(a, observed({claim: bound, job: {status: {succeeded: 1}}, objects: [{kind: "PersistentVolumeClaim", name: claimName, ownerUids: ["u-9"]}, {kind: "Job", name: jobName, ownerUids: ["u-9"]}]}), undefined, noProblems, defaults);
    expect(theirs.writes.adopt.map((o) => [o.kind, o.metadata?.ownerReferences?.[0]?.uid])).toEqual([["PersistentVolumeClaim", "u-1"], ["Job", "u-1"]]);
    const old = [
      {kind: "PersistentVolumeClaim" as const, name: "paddock-model-old", ownerUids: ["u-1"]},
      {kind: "Job" as const, name: "paddock-model-old", ownerUids: ["u-1", "u-9"]},
      {kind: "PersistentVolumeClaim" as const, name: "paddock-model-other", ownerUids: ["u-9"]}
    ];
    const mounting = {spec: {selector: {}, template: {spec: {containers: [], volumes: [{name: "model", persistentVolumeClaim: {claimName: "paddock-model-old"}}]}}}};
    const whileMounted = planModel(a, observed({claim: bound, job: {status: {active: 1}}, objects: old}), mounting, noProblems, defaults);
    expect(whileMounted.writes.delete).toEqual([]);
    expect(whileMounted.writes.release.map((o) => `${o.kind}/${o.metadata?.name}`)).toEqual(["Job/paddock-model-old"]);
    const after = planModel(a, observed({claim: bound, job: {status: {succeeded: 1}}, objects: old}), undefined, noProblems, defaults);
    expect(after.writes.delete.map((o) => `${o.kind}/${o.metadata?.name}`)).toEqual(["PersistentVolumeClaim/paddock-model-old"]);
  });

  it("leaves per-pod downloads and local files to the pods", () => {
    expect(planModel(svc({uri: "hf://org/repo/q4.gguf", cache: {mode: "None"}}), undefined, undefined, noProblems, defaults)).toMatchObject({deploymentAllowed: true, status: undefined, readiness: {ready: true, reason: "PerPodDownload"}});
    expect(planModel(svc({uri: "file:///models/x.gguf"}), undefined, undefined, noProblems, defaults).readiness).toMatchObject({ready: true, reason: "NoDownload"});
  });

  it("turns model failures into warnings and progress into normal events", () => {
    const at = "2026-12-03T10:00:00Z";
    expect(eventFor({type: "ModelReady", status: "False", reason: "Unauthorized", message: "m", lastTransitionTime: at}, false)).toMatchObject({type: "Warning", reason: "Unauthorized"});
    expect(eventFor({type: "ModelReady", status: "False", reason: "Downloading", message: "m", lastTransitionTime: at}, false)).toMatchObject({type: "Normal"});
    expect(eventFor({type: "ModelReady", status: "False", reason: "Pending", message: "m", lastTransitionTime: at}, true)).toBeUndefined();
  });
});

describe("the download contract", () => {
  it("resolves hf:// and sharded names, reads progress lines and failure reasons", () => {
    expect(resolveModelUrl("hf://org/repo/a/b.gguf@v1", "http://mirror/")).toEqual({url: "http://mirror/org/repo/resolve/v1/a/b.gguf", hub: true});
    expect(shardUris("hf://o/r/m-00001-of-00002.gguf@main")).toEqual(["hf://o/r/m-00001-of-00002.gguf@main", "hf://o/r/m-00002-of-00002.gguf@main"]);
    expect(shardUris("hf://o/r/m-00002-of-00002.gguf")).toBeUndefined();
    expect(lastProgress('{"msg":"progress","bytes":5,"total":10,"bytes_per_second":1,"eta_seconds":5}\nplain text\n')).toMatchObject({bytes: 5, total: 10});
    expect(lastProgress("nothing\n")).toBeUndefined();
    expect(parseDownloadFailure("fetch-model: DigestMismatch: sha256 mismatch for x: expected a, got b")).toEqual({reason: "DigestMismatch", message: "sha256 mismatch for x: expected a, got b"});
    expect(parseDownloadFailure("killed")).toEqual({reason: "HttpError", message: "killed"});
  });
});
