import {createHash} from "node:crypto";
import type {V1Job, V1PersistentVolumeClaim, V1Pod} from "@kubernetes/client-node";
import {lastProgress, parseDownloadFailure, resolveModelUrl, shardUris} from "../../contract/model-download.js";
import {parseLlmService, type LlmService} from "../../operator/src/api/llmservice.js";
import {planModel, type ModelObservation} from "../../operator/src/controller/model-plan.js";
import {eventFor} from "../../operator/src/controller/plan.js";
import {claimSize, CLAIM_UID_ANNOTATION, DOWNLOAD_INPUTS_ANNOTATION, downloadInputs, modelCache} from "../../operator/src/desired/model-cache.js";

const defaults = {image: "inference:1"};
const svc = (model: Record<string, unknown>, uid = "u-1"): LlmService => parseLlmService({metadata: {name: `s-${uid}`, namespace: "ns", uid, generation: 1}, spec: {model}});
const noProblems = {insufficientGpu: 0};
const observed = (o: Partial<ModelObservation> = {}): ModelObservation => ({objects: [], claim: undefined, job: undefined, pods: [], logTail: undefined, sizeError: undefined, sizeBytes: undefined, ...o});
const bound: V1PersistentVolumeClaim = {status: {phase: "Bound"}};
const runningPod = (name = "dl-1"): V1Pod => ({metadata: {name, creationTimestamp: "2026-12-03T10:00:00Z" as never}, status: {phase: "Running"}});

describe("the shared model cache", () => {
  const sha = "ab".repeat(32);
  const a = svc({uri: "hf://org/repo/q4.gguf", sha256: sha}, "u-1");

  it("keys claims and Jobs by the model's digest and file name (else its URI): services naming one model share them", () => {
    const cache = modelCache(a)!;
    const key = createHash("sha256").update(`${sha}\nq4.gguf`).digest("hex").slice(0, 16);
    expect(cache).toEqual({key, claimName: `paddock-model-${key}`, managedClaim: true, jobName: `paddock-model-${key}`, subPath: `${key}/q4.gguf`});
    expect(modelCache(svc({uri: "hf://org/repo/q4.gguf", sha256: sha}, "u-2"))).toEqual(cache);
    // The same bytes under another name: the Job writes one file name, so each gets its own
    // (two services shared one Job before, and the second one's file was never written).
    expect(modelCache(svc({uri: "hf://org/repo/model.gguf", sha256: sha}, "u-3"))!.key).not.toBe(key);
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

  it("downloads again into a claim that was deleted and made again: the old Job's success was about a volume that is gone", () => {
    const cache = modelCache(a)!;
    const objects = [{kind: "PersistentVolumeClaim" as const, name: cache.claimName, ownerUids: ["u-1"]}, {kind: "Job" as const, name: cache.jobName, ownerUids: ["u-1"], resourceVersion: "7"}];
    const done = (claimUid: string): V1Job => ({metadata: {name: cache.jobName, resourceVersion: "7", annotations: {[DOWNLOAD_INPUTS_ANNOTATION]: downloadInputs(a, defaults), [CLAIM_UID_ANNOTATION]: claimUid}}, status: {succeeded: 1}});
    const claim = (uid: string): V1PersistentVolumeClaim => ({metadata: {name: cache.claimName, uid}, status: {phase: "Bound"}});
    expect(planModel(a, observed({claim: claim("c-1"), job: done("c-1"), objects}), undefined, noProblems, defaults)).toMatchObject({deploymentAllowed: true, status: {phase: "Ready"}});
    const again = planModel(a, observed({claim: claim("c-2"), job: done("c-1"), objects}), undefined, noProblems, defaults);
    expect(again).toMatchObject({deploymentAllowed: false, status: {phase: "Pending", message: expect.stringMatching(/made again/) as unknown as string}});
    expect(again.writes.delete).toEqual([{apiVersion: "batch/v1", kind: "Job", metadata: {name: cache.jobName, namespace: "ns", resourceVersion: "7"}}]);
    // The Job it creates then remembers which claim it fills.
    expect(planModel(a, observed({claim: claim("c-2"), objects: objects.slice(0, 1)}), undefined, noProblems, defaults).writes.create[0]?.metadata?.annotations?.[CLAIM_UID_ANNOTATION]).toBe("c-2");
  });

  it("says Pending, not Failed, between a failed download pod and the one the Job starts next", () => {
    const cache = modelCache(a)!;
    const crashed: V1Pod = {metadata: {name: "dl-1", creationTimestamp: "2026-12-03T10:00:00Z" as never}, status: {phase: "Failed", containerStatuses: [{name: "fetch-model", state: {terminated: {exitCode: 137, message: "HttpError: killed"}}} as never]}};
    const active = planModel(a, observed({claim: bound, job: {metadata: {name: cache.jobName}, status: {active: 0, failed: 1}}, pods: [crashed]}), undefined, noProblems, defaults);
    expect(active.status).toMatchObject({phase: "Pending", message: expect.stringMatching(/an attempt failed \(HttpError: killed\)/) as unknown as string});
    const failed = planModel(a, observed({claim: bound, job: {metadata: {name: cache.jobName}, status: {failed: 4, conditions: [{type: "Failed", status: "True"} as never]}}, pods: [crashed]}), undefined, noProblems, defaults);
    expect(failed.status).toMatchObject({phase: "Failed", reason: "HttpError"});
  });

  it("releases and deletes a shared object only as it was read (its resourceVersion), so a concurrent release cannot orphan it", () => {
    const old = svc({uri: "hf://org/repo/other.gguf"}, "u-1");
    const objects = [
      {kind: "PersistentVolumeClaim" as const, name: "paddock-model-shared", ownerUids: ["u-1", "u-2"], resourceVersion: "11"},
      {kind: "Job" as const, name: "paddock-model-mine", ownerUids: ["u-1"], resourceVersion: "12"}
    ];
    const plan = planModel(old, observed({objects}), undefined, noProblems, defaults);
    expect(plan.writes.release).toEqual([{apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: {name: "paddock-model-shared", namespace: "ns", resourceVersion: "11"}}]);
    expect(plan.writes.delete).toEqual([{apiVersion: "batch/v1", kind: "Job", metadata: {name: "paddock-model-mine", namespace: "ns", resourceVersion: "12"}}]);
  });

  it("leaves per-pod downloads and local files to the pods", () => {
    expect(planModel(svc({uri: "hf://org/repo/q4.gguf", cache: {mode: "None"}}), undefined, undefined, noProblems, defaults)).toMatchObject({deploymentAllowed: true, status: {progress: "PerPod"}, readiness: {ready: true, reason: "PerPodDownload"}});
    // `kubectl get llms` says where the model is (its MODEL column was empty for these).
    const local = planModel(svc({uri: "file:///models/x.gguf"}), undefined, undefined, noProblems, defaults);
    expect(local).toMatchObject({readiness: {ready: true, reason: "NoDownload"}, status: {phase: "Ready", progress: "Local"}});
    expect(planModel(svc({uri: "pvc://models/x.gguf"}), undefined, undefined, noProblems, defaults).status?.progress).toBe("Local");
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
