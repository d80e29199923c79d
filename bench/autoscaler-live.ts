/**
 * The autoscaler live, once: the local stack (dev/stack.ts: control plane, operator,
 * Prometheus scraping every 5 s, real inference processes) with an LlmService evaluated
 * every 10 s. The load is a step: idle, then CLIENTS clients always in flight, then idle.
 * Measures the time from the step to a new replica count and to the replicas needed, the
 * scale-down after the window, replica changes, and replica-seconds against the ideal.
 * The baseline is the HPA algorithm (default behaviour, same window) computed on the load
 * recorded in the same run. Prints a table and writes bench/results/autoscaler-live.json.
 */
import {resolve} from "node:path";
import {API_VERSION, KIND} from "../operator/src/api/llmservice.js";
import {REPO_ROOT} from "../dev/paths.js";
import {startStack} from "../dev/stack.js";
import {hpa, paddock, run, type SimulationSettings} from "./lib/autoscaler-sim.js";
import {printTable, writeResults} from "./lib/report.js";

const CLIENTS = 16;
const TARGET = 4;
const WINDOW_S = 60;
const PHASES = {idleS: 30, loadS: 90, afterS: 120};
const settings: SimulationSettings = {scrapeSeconds: 5, min: 1, max: 4, target: TARGET};

const stack = await startStack({dir: resolve(REPO_ROOT, ".paddock/bench-autoscaler"), log: () => {}});
try {
  const name = "bench";
  await stack.kube.apply(
    {
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: {name, namespace: "default"},
      spec: {
        model: {uri: "file:///models/stories260K.gguf", hostPath: true},
        replicas: {min: 1, max: 4},
        engine: {parallelSlots: 4, shutdownGraceSeconds: 5},
        cache: {enabled: false},
        autoscaling: {enabled: true, targetActiveRequests: TARGET, intervalSeconds: 10, scaleDownDelaySeconds: WINDOW_S}
      }
    } as never,
    "bench"
  );
  const url = await stack.serviceUrl("default", name);
  const body = JSON.stringify({model: name, messages: [{role: "user", content: "Tell me a story"}], max_tokens: 64, temperature: 1});
  const post = () => fetch(`${url}/v1/chat/completions`, {method: "POST", headers: {"Content-Type": "application/json"}, body});
  while (!(await post().catch(() => undefined))?.ok) await new Promise((r) => setTimeout(r, 500));
  await new Promise((r) => setTimeout(r, 15_000)); // let the first evaluations see it idle

  let inFlight = 0;
  let on = false;
  let failed = 0;
  const clients: Array<Promise<void>> = [];
  const client = async () => {
    while (on) {
      inFlight++;
      const res = await post().catch(() => undefined);
      inFlight--;
      if (!res?.ok) failed++;
      await res?.text();
    }
  };
  const replicasNow = async () => (await stack.kube.get<{spec: {replicas: number}}>(`/apis/apps/v1/namespaces/default/deployments/${name}`))!.spec.replicas;

  const load: number[] = [];
  const replicas: number[] = [];
  const total = PHASES.idleS + PHASES.loadS + PHASES.afterS;
  for (let t = 0; t < total; t++) {
    if (t === PHASES.idleS) {
      on = true;
      for (let i = 0; i < CLIENTS; i++) clients.push(client());
    }
    if (t === PHASES.idleS + PHASES.loadS) on = false;
    const tick = new Promise((r) => setTimeout(r, 1000));
    load.push(inFlight);
    replicas.push(await replicasNow());
    await tick;
  }
  await Promise.all(clients);

  const stepAt = PHASES.idleS;
  const stopAt = PHASES.idleS + PHASES.loadS;
  const needed = Math.min(settings.max, Math.ceil(CLIENTS / TARGET));
  const firstChange = replicas.findIndex((r, t) => t >= stepAt && r > replicas[stepAt - 1]!) - stepAt;
  const reachedNeeded = replicas.findIndex((r, t) => t >= stepAt && r >= needed) - stepAt;
  const backDown = replicas.findIndex((r, t) => t >= stopAt && r === settings.min) - stopAt;
  const changes = replicas.filter((r, t) => t > 0 && r !== replicas[t - 1]).length;
  const replicaSeconds = replicas.reduce((a, b) => a + b, 0);
  const ideal = load.reduce((a, l) => a + Math.max(settings.min, l / TARGET), 0);
  const live = {
    scaler: `paddock live (window ${WINDOW_S}s, every 10s, 5s scrapes)`,
    reactionS: firstChange,
    toNeededS: reachedNeeded,
    downAfterStopS: backDown,
    changes,
    replicaSeconds,
    overIdealPct: Math.round((replicaSeconds / ideal - 1) * 1000) / 10,
    failedRequests: failed
  };
  const trace = {name: "live step", load, stepAt, stopAt};
  const simulated = [hpa(settings, WINDOW_S), paddock(settings, WINDOW_S)].map((s) => run(trace, s, settings));
  const rows = [
    {scaler: live.scaler, "react s": live.reactionS, "to needed s": live.toNeededS, "down after stop s": live.downAfterStopS, changes: live.changes, "replica-s": live.replicaSeconds, "vs ideal": `+${live.overIdealPct}%`},
    ...simulated.map((r) => {
      const down = r.downAfterStopS;
      return {scaler: `${r.scaler}, on the recorded load`, "react s": r.reactionS ?? "", "to needed s": r.readyForStepS ?? "", "down after stop s": down ?? "", changes: r.changes, "replica-s": r.replicaSeconds, "vs ideal": `+${r.overIdealPct}%`};
    })
  ];
  printTable(`Autoscaler live: ${CLIENTS} clients for ${PHASES.loadS}s, target ${TARGET} per replica, max ${settings.max}; ${failed} failed requests`, rows);
  console.log(`\nwrote ${writeResults("autoscaler-live", {settings, clients: CLIENTS, phases: PHASES, live, simulated, load, replicas})}`);
} finally {
  await stack.stop();
}
