import {spawnSync} from "node:child_process";
import {createHash} from "node:crypto";
import {readFileSync, readdirSync} from "node:fs";
import {join, resolve} from "node:path";
import {KubeConfig} from "@kubernetes/client-node";
import OpenAI from "openai";
import {stringify} from "yaml";
import {CONTAINER} from "../../contract/index.js";
import {clusterDown, clusterUp, type ClusterState} from "../../dev/cluster/cluster.js";
import {ensureBinaries} from "../../dev/cluster/locate.js";
import {hostAddress, RealNode} from "../../dev/node/real-node.js";
import {REPO_ROOT, TINY_MODEL} from "../../dev/paths.js";
import {LocalVolumeProvisioner, VOLUME_RESOURCES} from "../../dev/runtime/local-volumes.js";
import {KubeClient} from "../../operator/src/kube/kube-client.js";
import {eventually} from "../helpers/cluster.js";
import {ModelHost} from "../helpers/model-host.js";

/**
 * Paddock as it ships, on a real node: the images built from the Dockerfiles (`npm run
 * images`, buildah), imported into containerd, run by a real kubelet with runc, bridge CNI
 * and kube-proxy, joined to a control plane of its own (no KWOK nodes: every pod here is a
 * real container). A user's session: `helm install` the chart with its default images, apply
 * an LlmService on the CPU image, let the download Job fetch the model into a claim, then
 * call the Service through kube-proxy with the official OpenAI client; `kubectl logs` and
 * `kubectl exec` into the containers. Nothing is stood in for but the registry (the images
 * are imported) and the storage driver (claims are folders on this machine, as
 * local-path-provisioner makes them). Needs root, as CI runs.
 *
 * One ordered scenario: each step needs what the previous left, and a step after a failed
 * one fails at once, naming the step that broke it.
 */
const DIR = resolve(REPO_ROOT, ".paddock/real-node");
const NODE_DIR = "/var/lib/paddock/real-node";
const NAMESPACE = "demo";

interface Pod {
  metadata: {name: string; labels?: Record<string, string>};
  spec: {containers: Array<{name: string; image: string}>; nodeName?: string; securityContext?: Record<string, unknown>};
  status: {phase?: string; podIP?: string; conditions?: Array<{type: string; status: string}>};
}

describe("Paddock as it ships: the images on a real node (containerd, runc, kubelet, kube-proxy)", () => {
  let broken: string | undefined;
  let stepNumber = 0;
  const step = (name: string, fn: () => Promise<void>, timeoutMs = 120_000) => {
    const title = `step ${++stepNumber}: ${name}`;
    it(
      title,
      async () => {
        if (broken) throw new Error(`not run: "${broken}" failed, and this step needs the state it leaves`);
        try {
          await fn();
        } catch (error) {
          broken = title;
          throw error;
        }
      },
      timeoutMs
    );
  };

  const address = hostAddress();
  const host = new ModelHost();
  const model = readFileSync(TINY_MODEL);
  const modelSha = createHash("sha256").update(model).digest("hex");
  let cluster: ClusterState;
  let node: RealNode | undefined;
  let provisioner: LocalVolumeProvisioner | undefined;
  let kube: KubeClient | undefined;
  let images: {operator: string; inferenceCpu: string};
  const timings: Record<string, number> = {};

  const run = (binary: string, args: string[], input?: string) => {
    const r = spawnSync(join(cluster.binDir, binary), args, {input, encoding: "utf8", env: {...process.env, KUBECONFIG: cluster.kubeconfig}});
    if (r.status !== 0) throw new Error(`${binary} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  const kubectl = (args: string[], input?: string) => run("kubectl", args, input);
  const pods = (namespace: string, selector: string) => (JSON.parse(kubectl(["get", "pods", "-n", namespace, "-l", selector, "-o", "json"])) as {items: Pod[]}).items;
  const ready = (p: Pod) => p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
  const serverPod = () => pods(NAMESPACE, "llm.paddock.dev/service=tiny").find((p) => p.spec.containers.some((c) => c.name === CONTAINER.server));

  beforeAll(async () => {
    // The images as `npm run images` builds them (seconds when nothing changed).
    const built = spawnSync("bash", [resolve(REPO_ROOT, "dev/images/build.sh")], {encoding: "utf8", stdio: ["ignore", "pipe", "inherit"]});
    if (built.status !== 0) throw new Error("dev/images/build.sh failed (see above)");
    const [operator, inferenceCpu] = spawnSync("bash", [resolve(REPO_ROOT, "dev/images/build.sh"), "--print-tags"], {encoding: "utf8"}).stdout.trim().split(" ");
    images = {operator: operator!, inferenceCpu: inferenceCpu!};
    const nodeBin = spawnSync("bash", [resolve(REPO_ROOT, "dev/node/build.sh")], {encoding: "utf8", stdio: ["ignore", "pipe", "inherit"]}).stdout.trim().split("\n").at(-1)!;
    const started = Date.now();
    await clusterDown(join(DIR, "cluster"));
    cluster = await clusterUp({dir: join(DIR, "cluster"), binDir: ensureBinaries(), nodes: {gpuNodes: 0, gpusPerNode: 0, cpuNodes: 0}, advertiseAddress: address});
    node = await RealNode.start({cluster, binDir: nodeBin, dir: NODE_DIR, address, images: [images.operator, images.inferenceCpu]});
    timings["control plane and node Ready"] = Date.now() - started;
    const kc = new KubeConfig();
    kc.loadFromFile(cluster.kubeconfig);
    kube = new KubeClient(kc, {resources: VOLUME_RESOURCES});
    provisioner = new LocalVolumeProvisioner(kube, join(NODE_DIR, "volumes"));
    await provisioner.start();
    // Pods reach this machine at its own address, not at its loopback.
    await host.start(address);
    host.host("tiny.gguf", {body: model, linkedSha256: modelSha});
  }, 600_000);

  afterAll(async () => {
    provisioner?.stop();
    kube?.close();
    await host.stop();
    if (broken && cluster) {
      // What a user would look at: the objects, their events, the service's status.
      for (const args of [["get", "llms,pods,jobs,pvc,pv", "-A", "-o", "wide"], ["get", "events", "-A", "--sort-by=.lastTimestamp"], ["get", "llms", "-A", "-o", "yaml"]]) {
        const r = spawnSync(join(cluster.binDir, "kubectl"), args, {encoding: "utf8", env: {...process.env, KUBECONFIG: cluster.kubeconfig}});
        process.stdout.write(`--- kubectl ${args.join(" ")}\n${r.stdout.split("\n").slice(-60).join("\n")}${r.stderr}\n`);
      }
    }
    if (broken && node) {
      for (const f of readdirSync(node.logDir)) process.stdout.write(`--- ${f} (last lines)\n${readFileSync(join(node.logDir, f), "utf8").split("\n").slice(-25).join("\n")}\n`);
    }
    await node?.stop();
    if (cluster) await clusterDown(cluster.dir);
    process.stdout.write(`real node: ${JSON.stringify(timings)}\n`);
  }, 120_000);

  step("helm install of the chart runs the operator from its image, non-root, on the mounted ServiceAccount token", async () => {
    const started = Date.now();
    run("helm", ["install", "paddock", resolve(REPO_ROOT, "charts/paddock"), "--namespace", "paddock-system", "--create-namespace", "--set", `hfEndpoint=${host.url}`, "--wait", "--timeout", "120s"]);
    const [operator] = pods("paddock-system", "app.kubernetes.io/name=paddock");
    expect(operator?.spec.containers[0]!.image).toBe(images.operator);
    expect(operator && ready(operator)).toBe(true);
    timings["helm install -> operator Ready"] = Date.now() - started;
    // The image's user, as the kernel sees it, and its token (it has no other credentials).
    expect(kubectl(["exec", "-n", "paddock-system", operator!.metadata.name, "--", "node", "-e", "process.stdout.write(String(process.getuid()))"])).toBe("1000");
    expect(kubectl(["exec", "-n", "paddock-system", operator!.metadata.name, "--", "ls", "/var/run/secrets/kubernetes.io/serviceaccount/"])).toMatch(/token/);
    const logs = kubectl(["logs", "-n", "paddock-system", operator!.metadata.name]);
    expect(logs).toMatch(/leader/);
  });

  step("an LlmService on the CPU image downloads its model with the real Job into a claim and becomes Ready", async () => {
    const started = Date.now();
    kubectl(["create", "namespace", NAMESPACE]);
    const service = {
      apiVersion: "llm.paddock.dev/v1alpha1",
      kind: "LlmService",
      metadata: {name: "tiny", namespace: NAMESPACE},
      spec: {
        model: {uri: "hf://org/repo/tiny.gguf", name: "tiny"},
        resources: {gpus: 0, cpu: "1", memory: "1Gi"},
        engine: {parallelSlots: 2, shutdownGraceSeconds: 5},
        replicas: {min: 1, max: 1},
        cache: {enabled: false},
        routing: {replicas: 1}
      }
    };
    kubectl(["apply", "-f", "-"], stringify(service));
    await eventually(() => {
      const status = JSON.parse(kubectl(["get", "llms", "tiny", "-n", NAMESPACE, "-o", "json"])) as {status?: {conditions?: Array<{type: string; status: string; reason?: string; message?: string}>}};
      return status.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
    }, 240_000, "LlmService tiny Ready");
    timings["apply -> Ready (download, image start, model load)"] = Date.now() - started;
    const job = JSON.parse(kubectl(["get", "jobs", "-n", NAMESPACE, "-o", "json"])) as {items: Array<{status: {succeeded?: number}}>};
    expect(job.items.map((j) => j.status.succeeded)).toEqual([1]);
    expect(host.bytesServed("tiny.gguf")).toBe(model.length);
    const server = serverPod()!;
    expect(server.spec.containers.find((c) => c.name === CONTAINER.server)!.image).toBe(images.inferenceCpu);
    expect(server.spec.nodeName).toBe(node!.name);
  }, 300_000);

  step("the Service answers through kube-proxy and the router: chat and streaming with the official client", async () => {
    const svc = JSON.parse(kubectl(["get", "service", "tiny", "-n", NAMESPACE, "-o", "json"])) as {spec: {clusterIP: string; ports: Array<{port: number}>}};
    const baseURL = `http://${svc.spec.clusterIP}:${svc.spec.ports[0]!.port}/v1`;
    const client = new OpenAI({baseURL, apiKey: "unused", maxRetries: 0});
    const started = Date.now();
    const {data: chat, response} = await client.chat.completions.create({model: "tiny", messages: [{role: "user", content: "Tell me a story"}], max_tokens: 16}).withResponse();
    timings["first completion through the Service"] = Date.now() - started;
    expect(chat.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(chat.usage!.completion_tokens).toBeGreaterThan(0);
    // The router answered: it names the replica it chose, the pod kube-proxy does not know of.
    expect(response.headers.get("x-paddock-replica")).toBe(serverPod()!.metadata.name);
    const stream = await client.chat.completions.create({model: "tiny", messages: [{role: "user", content: "Once upon a time"}], max_tokens: 16, stream: true, stream_options: {include_usage: true}, logprobs: true});
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    const chunkLogprobs: string[] = [];
    for await (const chunk of stream) {
      const content = chunk.choices[0]?.delta.content;
      text += content ?? "";
      usage = chunk.usage ?? usage;
      if (content) chunkLogprobs.push(chunk.choices[0]!.logprobs?.content?.map((t) => t.token).join("") ?? "");
    }
    expect(text.length).toBeGreaterThan(0);
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    // Each text chunk came with its own logprobs: the image's llama.cpp carries Paddock's
    // patch (inference-image/patches), which the prebuilt binaries lack.
    expect(chunkLogprobs.join("")).toBe(text);
    expect(chunkLogprobs.every((t) => t !== "")).toBe(true);
  });

  step("kubectl logs and exec reach the real containers: non-root, read-only root, node-llama-cpp's CPU backend", async () => {
    const server = serverPod()!.metadata.name;
    const logs = kubectl(["logs", "-n", NAMESPACE, server, "-c", CONTAINER.server]);
    const backend = /"msg":"llama\.cpp loaded: gpu=(\S+) build=(\S+) [^"]*CPU : ([^"]*)"/.exec(logs);
    expect(backend?.[1]).toBe("false");
    // The image's own build of llama.cpp (inference-image/scripts/build-llama.mjs), not the prebuilt binaries.
    expect(backend?.[2]).toBe("localBuild");
    expect(backend?.[3]).toMatch(/AVX2 = 1|SSE3 = 1/);
    process.stdout.write(`real node: ${backend?.[0]}\n`);
    // The image's llama.cpp has Paddock's patch compiled in (inference-image/patches).
    expect(logs).toContain("logprobs: from the sampler, chunk by chunk");
    expect(kubectl(["exec", "-n", NAMESPACE, server, "-c", CONTAINER.server, "--", "id", "-u"]).trim()).toBe("10001");
    const write = spawnSync(join(cluster.binDir, "kubectl"), ["exec", "-n", NAMESPACE, server, "-c", CONTAINER.server, "--", "touch", "/app/x"], {encoding: "utf8", env: {...process.env, KUBECONFIG: cluster.kubeconfig}});
    expect(write.status).not.toBe(0);
    expect(write.stderr).toMatch(/Read-only file system/);
    const [router] = pods(NAMESPACE, "llm.paddock.dev/router=tiny");
    expect(router && ready(router)).toBe(true);
    expect(kubectl(["exec", "-n", NAMESPACE, router!.metadata.name, "--", "node", "-e", "process.stdout.write(String(process.getuid()))"])).toBe("1000");
  });
});
