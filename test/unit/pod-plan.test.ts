import {expand, localPath, planContainer, PlanError, type PlanContext} from "../../dev/runtime/pod-plan.js";
import {loopbackFor, podIPFor} from "../../dev/runtime/pod-runner.js";
const POD_NETWORK = "/work/main/dist/dev/runtime/pod-network.js";

const ctx: PlanContext = {
  namespace: "team",
  podName: "chat-abc",
  podIP: "10.42.0.7",
  listenIP: "127.42.0.7",
  volumes: new Map([
    ["model", "/home/me/models"],
    ["tmp", "/work/.paddock/dev/pods/x/volumes/tmp"]
  ]),
  secret: (name, key) => (name === "redis" && key === "password" ? "s3cret" : undefined),
  configMap: () => undefined,
  appRoot: "/work/main"
};

describe("local runtime: pod plan", () => {
  it("expands $(VAR) from earlier variables only, and $$ escapes, as the kubelet does", () => {
    expect(expand("redis://:$(PW)@host", {PW: "x"})).toBe("redis://:x@host");
    expect(expand("$(LATER) and $$(PW)", {PW: "x"})).toBe("$(LATER) and $(PW)");
  });

  it("maps container paths to the local folder of the deepest mount", () => {
    const mounts = [
      {mountPath: "/models", local: "/home/me/models"},
      {mountPath: "/models/extra", local: "/data/extra"}
    ];
    expect(localPath("/models/stories260K.gguf", mounts)).toBe("/home/me/models/stories260K.gguf");
    expect(localPath("/models/extra/a.gguf", mounts)).toBe("/data/extra/a.gguf");
    expect(localPath("/modelsX/a", mounts)).toBe("/modelsX/a");
  });

  it("runs the inference image's entrypoint from the checkout, with the pod's environment resolved", () => {
    const plan = planContainer(
      {
        name: "server",
        image: "ghcr.io/paddock-llm/inference:0.1.0",
        env: [
          {name: "MODEL_PATH", value: "/models/stories260K.gguf"},
          {name: "PW", valueFrom: {secretKeyRef: {name: "redis", key: "password"}}},
          {name: "REDIS_URL", value: "redis://:$(PW)@127.0.0.1:6379"},
          {name: "POD", valueFrom: {fieldRef: {fieldPath: "metadata.name"}}},
          {name: "IP", valueFrom: {fieldRef: {fieldPath: "status.podIP"}}}
        ],
        volumeMounts: [{name: "model", mountPath: "/models"}]
      },
      ctx
    );
    expect(plan.file).toBe(process.execPath);
    expect(plan.args).toEqual(["/work/main/dist/inference-image/src/main.js"]);
    expect(plan.env).toEqual({MODEL_PATH: "/home/me/models/stories260K.gguf", PW: "s3cret", REDIS_URL: "redis://:s3cret@127.0.0.1:6379", POD: "chat-abc", IP: "10.42.0.7", HOST: "127.42.0.7", NODE_OPTIONS: `--import=${POD_NETWORK}`});
  });

  it("gives a pod with a service account token its kubeconfig, and every pod the pod network", () => {
    const router = {name: "router", image: "ghcr.io/paddock-llm/operator:0.1.0", command: ["node", "dist/router/src/main.js"]};
    const plan = planContainer(router, {...ctx, kubeconfig: "/pods/r/kubeconfig"});
    expect(plan.args).toEqual(["/work/main/dist/router/src/main.js"]);
    expect(plan.env).toMatchObject({KUBECONFIG: "/pods/r/kubeconfig", NODE_OPTIONS: `--import=${POD_NETWORK}`});
    expect(planContainer(router, ctx).env["KUBECONFIG"]).toBeUndefined();
  });

  it("serves GPU pods from the CPU on a node whose GPUs are fake, and only there", () => {
    const server = {name: "server", image: "paddock/inference:1", env: [{name: "GPU", value: "auto"}, {name: "GPU_REQUIRED", value: "true"}]};
    expect(planContainer(server, {...ctx, fakeGpus: true}).env).toMatchObject({GPU: "auto", GPU_REQUIRED: "false"});
    expect(planContainer(server, ctx).env).toMatchObject({GPU_REQUIRED: "true"});
  });

  it("refuses what it cannot run, with the reason kubectl describe shows", () => {
    const fail = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof PlanError ? `${e.reason}: ${e.message}` : String(e);
      }
      return "no error";
    };
    expect(fail(() => planContainer({name: "redis", image: "redis:7.4-alpine"}, ctx))).toBe("ImageNotRunnableLocally: the local runtime runs only Paddock's inference and operator images, not redis:7.4-alpine");
    expect(fail(() => planContainer({name: "s", image: "inference:dev", env: [{name: "K", valueFrom: {secretKeyRef: {name: "keys", key: "k"}}}]}, ctx))).toBe('CreateContainerConfigError: secret "keys" key "k" not found');
    expect(fail(() => planContainer({name: "s", image: "inference:dev", volumeMounts: [{name: "data", mountPath: "/data"}]}, ctx))).toBe("CreateContainerConfigError: volume data is not available locally");
  });

  it("reports a pod listening on 127.42.b.c as 10.42.b.c (EndpointSlices refuse loopback) and maps it back", () => {
    expect(podIPFor("127.42.1.9")).toBe("10.42.1.9");
    expect(loopbackFor("10.42.1.9")).toBe("127.42.1.9");
  });
});
