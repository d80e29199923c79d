/**
 * `npm run dev`: the whole system on one machine. Starts the local control plane, a node
 * whose pods really run, Redis, Prometheus and the operator; applies
 * examples/llmservice-local.yaml; waits until it answers; prints how to reach it.
 * Ctrl-C stops everything it started.
 *
 *   npm run dev [-- --no-example] [--gpus N] [--model-dir DIR] [--hf-endpoint URL]
 *
 * State and logs go to PADDOCK_DEV_DIR (default .paddock/dev in the checkout).
 */
import {parseArgs} from "node:util";
import {API_VERSION, KIND} from "../operator/src/api/llmservice.js";
import {resourcePath} from "../operator/src/kube/kube-client.js";
import {localExample, startStack} from "./stack.js";

const {values} = parseArgs({options: {"no-example": {type: "boolean", default: false}, gpus: {type: "string", default: "8"}, "model-dir": {type: "string"}, "hf-endpoint": {type: "string"}}});
const started = Date.now();
const dir = process.env["PADDOCK_DEV_DIR"];
const stack = await startStack({
  gpus: Number(values.gpus),
  ...(values["model-dir"] ? {modelDir: values["model-dir"]} : {}),
  ...(dir ? {dir} : {}),
  // hf:// models from a mirror (or a test's model host), as the operator's flag does in a cluster.
  ...(values["hf-endpoint"] ? {operatorArgs: [`--hf-endpoint=${values["hf-endpoint"]}`]} : {})
});
let stopping = false;
const shutdown = async (code = 0) => {
  if (stopping) return;
  stopping = true;
  console.log("\ndev: stopping everything");
  await stack.stop();
  console.log("dev: stopped");
  process.exit(code);
};
process.on("SIGINT", () => void shutdown());
process.on("SIGTERM", () => void shutdown());

console.log(`KUBECONFIG=${stack.kubeconfig}`);
console.log(`PROMETHEUS_URL=${stack.prometheusUrl}`);
console.log(`REDIS_URL=${stack.redisUrl}`);
if (!values["no-example"]) {
  const example = localExample(stack.redisUrl);
  const namespace = "default";
  const applied = Date.now();
  await stack.kube.apply({...example, metadata: {...example.metadata, namespace}}, "kubectl-client-side-apply");
  const url = await stack.serviceUrl(namespace, example.metadata.name);
  const body = JSON.stringify({model: example.metadata.name, messages: [{role: "user", content: "Tell me a story"}], max_tokens: 40});
  // Ready means a pod answers: the first completion through the Service is the real proof.
  for (;;) {
    const res = await fetch(`${url}/v1/chat/completions`, {method: "POST", headers: {"Content-Type": "application/json"}, body}).catch(() => undefined);
    if (res?.ok) break;
    if (stopping) await new Promise(() => {}); // Ctrl-C while waiting: shutdown exits
    const svc = await stack.kube.get<{status?: {conditions?: Array<{type: string; status: string; message: string}>}}>(resourcePath(API_VERSION, KIND, namespace, example.metadata.name)).catch(() => undefined);
    const ready = svc?.status?.conditions?.find((c) => c.type === "Ready");
    if (Date.now() - applied > 180_000) {
      console.error(`dev: the example did not answer within 180 s: ${ready?.message ?? "no status"}; logs in .paddock/dev`);
      await shutdown(1);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  console.log(`dev: ${KIND} ${namespace}/${example.metadata.name} answered ${((Date.now() - applied) / 1000).toFixed(1)} s after apply (${((Date.now() - started) / 1000).toFixed(1)} s after start)`);
  console.log(`SERVICE_URL=${url}`);
  console.log(`\n  export KUBECONFIG=${stack.kubeconfig}\n  kubectl get llms,pods -o wide\n  curl -s ${url}/v1/chat/completions -H 'content-type: application/json' \\\n    -d '${body}'\n`);
}
console.log("dev: ready; Ctrl-C stops everything");
