import {afterFailure} from "../../operator/src/controller/controller.js";
import {KubeApiError} from "../../operator/src/kube/kube-client.js";
import {eventually, useNamespaceClient} from "../helpers/cluster.js";

/**
 * A namespace being deleted refuses new objects. The operator used to retry such writes
 * with backoff and a warning each time until the namespace was gone (seen in CI: the chart
 * test's operator met the namespaces another test had just deleted). Against the real API
 * server: the refusal is recognised by its cause, and the reconcile is dropped.
 */
describe("a write into a namespace being deleted", () => {
  const ns = "terminating-writes";
  const c = useNamespaceClient(ns, {beforeDelete: (k) => void k.kubectlResult(["patch", "configmap", "hold", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'])});

  it("is refused for that reason, which the controller drops instead of retrying; other refusals are retried", async () => {
    const {k, kube} = c;
    // A finalizer holds the namespace in Terminating while the test writes into it.
    k.kubectl(["apply", "-f", "-"], JSON.stringify({apiVersion: "v1", kind: "ConfigMap", metadata: {name: "hold", namespace: ns, finalizers: ["test.paddock.dev/hold"]}}));
    k.kubectl(["delete", "namespace", ns, "--wait=false"]);
    await eventually(() => k.kubectl(["get", "namespace", ns, "-o", "jsonpath={.status.phase}"]) === "Terminating", 30_000, "namespace Terminating");
    const refused = await kube.apply({apiVersion: "v1", kind: "Secret", metadata: {name: "paddock-redis", namespace: ns}, stringData: {password: "x"}}, "paddock-operator").then(
      () => undefined,
      (e: unknown) => e
    );
    expect(refused).toBeInstanceOf(KubeApiError);
    expect(refused).toMatchObject({status: 403, causes: ["NamespaceTerminating"]});
    expect(afterFailure(refused)).toBe("drop");
    // A 403 for want of rights is not that: it is retried (and warned about).
    expect(afterFailure(new KubeApiError(403, "Forbidden", "secrets is forbidden: User cannot create resource"))).toBe("retry");
    expect(afterFailure(new Error("connection reset"))).toBe("retry");
  });
});
