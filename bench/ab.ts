/**
 * Two builds of the server side by side in one run: the same model, each pinned to core 1
 * (load from core 0), rounds interleaved (A then B, then B then A), completions with
 * `max_tokens` tokens from 1 and 8 clients, streaming and not. For a change's before and
 * after: build the baseline into another folder (e.g. `git worktree add /tmp/base HEAD~1 &&
 * (cd /tmp/base && npm ci && npm run build)`), then
 *
 *   npm run bench:ab -- --a /tmp/base --b . [--model file.gguf] [--rounds 4] [--seconds 8] [--tokens 64]
 */
import {spawnSync} from "node:child_process";
import {resolve} from "node:path";
import {parseArgs} from "node:util";
import {TINY_MODEL} from "../dev/paths.js";
import {ServerProcess} from "../dev/processes/server.js";
import {printTable, writeResults} from "./lib/report.js";
import {percentile, round} from "./lib/stats.js";

const {values} = parseArgs({options: {a: {type: "string"}, b: {type: "string", default: "."}, model: {type: "string", default: TINY_MODEL}, rounds: {type: "string", default: "4"}, seconds: {type: "string", default: "8"}, tokens: {type: "string", default: "64"}}});
if (!values.a) {
  process.stderr.write("usage: bench:ab -- --a <built checkout> [--b <built checkout>] [--model file.gguf] [--rounds N] [--seconds S] [--tokens N]\n");
  process.exit(2);
}
const [rounds, seconds, maxTokens] = [values.rounds, values.seconds, values.tokens].map(Number) as [number, number, number];

/** A build's server, pinned (all its threads) to core 1 as bench:data-plane pins it. */
async function start(dir: string): Promise<ServerProcess> {
  const server = await ServerProcess.start(
    {MODEL_PATH: values.model, MODEL_NAME: "m", PARALLEL_SLOTS: "4", CACHE_MODE: "off"},
    {entry: resolve(dir, "dist/inference-image/src/main.js")}
  );
  spawnSync("taskset", ["-a", "-p", "-c", "1", String(server.child.pid)]);
  return server;
}

/** Tokens per second for `clients` clients looping for `seconds`. */
async function load(url: string, clients: number, stream: boolean): Promise<number> {
  const deadline = Date.now() + seconds * 1000;
  let tokens = 0;
  let n = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({length: clients}, async (_, c) => {
      while (Date.now() < deadline) {
        const res = await fetch(`${url}/v1/completions`, {
          method: "POST",
          headers: {"content-type": "application/json"},
          body: JSON.stringify({model: "m", prompt: `Once upon a time ${c} ${n++}`, max_tokens: maxTokens, temperature: 1, stream, ...(stream ? {stream_options: {include_usage: true}} : {})})
        });
        const text = await res.text();
        tokens += Number(/"completion_tokens":(\d+)/.exec(text.slice(-500))?.[1] ?? 0);
      }
    })
  );
  return tokens / ((performance.now() - started) / 1000);
}

const servers = {A: await start(values.a), B: await start(values.b)};
const samples = new Map<string, number[]>();
try {
  for (let r = 0; r < rounds; r++) {
    for (const [clients, stream] of [[1, true], [8, true], [8, false]] as const) {
      for (const name of r % 2 === 0 ? (["A", "B"] as const) : (["B", "A"] as const)) {
        const key = `${clients}|${stream}|${name}`;
        samples.set(key, [...(samples.get(key) ?? []), await load(servers[name].url, clients, stream)]);
      }
    }
  }
} finally {
  await Promise.all(Object.values(servers).map((s) => s.stop()));
}
const rows = ([[1, true], [8, true], [8, false]] as const).map(([clients, stream]) => {
  const a = percentile(samples.get(`${clients}|${stream}|A`)!, 50);
  const b = percentile(samples.get(`${clients}|${stream}|B`)!, 50);
  return {clients, stream: stream ? "yes" : "no", "A tok/s (median)": round(a, 0), "B tok/s (median)": round(b, 0), "B / A": round(b / a, 2)};
});
printTable(`A ${values.a} vs B ${values.b}: ${values.model}, 4 slots, 1 thread, ${maxTokens} tokens, ${rounds} interleaved rounds of ${seconds} s`, rows);
console.log(`\nwrote ${writeResults("ab", {a: values.a, b: values.b, model: values.model, rounds, seconds, maxTokens, rows, samples: Object.fromEntries(samples)})}`);
