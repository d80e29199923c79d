/**
 * Where the server's main thread spends its time under load: runs the built server under
 * `node --cpu-prof` on the tiny model with 8 streaming (or non-streaming) clients for 15 s,
 * then prints self time by function and writes the .cpuprofile (open it in Chrome DevTools).
 *
 *   npm run bench:profile [-- nostream]
 *   PROFILE_CLIENTS=1 PROFILE_MAX_TOKENS=16 PROFILE_CHAT=1 npm run bench:profile   (the data-plane bench's c=1 chat cell)
 *   PROFILE_MODEL=.paddock/bench-models/synthetic-20m-q8_0-text.gguf ...   (another model; ChatML, as bench:data-plane)
 * The server runs pinned to the last core, as in bench:data-plane, the clients on the others.
 */
import {spawn} from "node:child_process";
import {mkdirSync, readdirSync, readFileSync, rmSync} from "node:fs";
import {cpus} from "node:os";
import {join, resolve} from "node:path";
import {REPO_ROOT, SERVER_ENTRY, TINY_MODEL, TINY_MODEL_NAME} from "../dev/paths.js";
import {freePort} from "../dev/processes/ports.js";
import {printTable, writeResults} from "./lib/report.js";
import {round} from "./lib/stats.js";

const stream = process.argv[2] !== "nostream";
const SECONDS = 15;
const CLIENTS = Number(process.env["PROFILE_CLIENTS"] ?? "8");
const MAX_TOKENS = Number(process.env["PROFILE_MAX_TOKENS"] ?? "64");
const CHAT = process.env["PROFILE_CHAT"] === "1";
const MODEL = process.env["PROFILE_MODEL"];
const dir = resolve(REPO_ROOT, "bench/results/profile");
rmSync(dir, {recursive: true, force: true});
mkdirSync(dir, {recursive: true});
const port = await freePort();
const lastCore = String(cpus().length - 1);
const child = spawn("taskset", ["-c", lastCore, process.execPath, "--cpu-prof", `--cpu-prof-dir=${dir}`, SERVER_ENTRY], {
  env: {
    PATH: process.env["PATH"] ?? "",
    MODEL_PATH: MODEL ? resolve(MODEL) : TINY_MODEL,
    ...(MODEL ? {MODEL_NAME: TINY_MODEL_NAME, CHAT_WRAPPER: "chatML"} : {}),
    PORT: String(port),
    HOST: "127.0.0.1",
    THREADS: "1",
    PARALLEL_SLOTS: "4",
    CACHE_MODE: "off",
    LOG_LEVEL: "warn"
  },
  stdio: "ignore"
});
const url = `http://127.0.0.1:${port}`;
while (!(await fetch(`${url}/readyz`).then((r) => r.ok, () => false))) await new Promise((r) => setTimeout(r, 100));
const deadline = Date.now() + SECONDS * 1000;
let requests = 0;
let tokens = 0;
await Promise.all(
  Array.from({length: CLIENTS}, async (_, c) => {
    while (Date.now() < deadline) {
      const input = CHAT ? {messages: [{role: "user", content: `Tell me a story (${c} ${requests})`}]} : {prompt: `Once upon a time ${c} ${requests}`};
      const res = await fetch(`${url}/v1/${CHAT ? "chat/completions" : "completions"}`, {
        method: "POST",
        headers: {"content-type": "application/json"},
        body: JSON.stringify({model: TINY_MODEL_NAME, ...input, max_tokens: MAX_TOKENS, temperature: 0, stream, ...(stream ? {stream_options: {include_usage: true}} : {})})
      });
      const text = await res.text();
      requests++;
      tokens += Number(/"completion_tokens":(\d+)/.exec(text)?.[1] ?? 0);
    }
  })
);
child.kill("SIGTERM");
await new Promise((r) => child.once("exit", r));

interface Profile {
  nodes: Array<{id: number; callFrame: {functionName: string; url: string; lineNumber: number}}>;
  samples: number[];
  timeDeltas: number[];
}
const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"))!;
const profile = JSON.parse(readFileSync(join(dir, file), "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
const self = new Map<string, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const f = byId.get(id)!;
  const key = `${f.functionName || "(anonymous)"} ${f.url.replace(/.*\/(node_modules|dist)\//, "$1/")}:${f.lineNumber}`;
  const dt = profile.timeDeltas[i] ?? 0;
  self.set(key, (self.get(key) ?? 0) + dt);
  total += dt;
});
const rows = [...self]
  .sort((a, b) => b[1] - a[1])
  .slice(0, 20)
  .map(([fn, t]) => ({"self %": round((100 * t) / total, 1), function: fn}));
printTable(`Server main thread, ${MODEL ?? "tiny model"}, 4 slots, ${CLIENTS} ${stream ? "streaming" : "non-streaming"} ${CHAT ? "chat" : "completion"} clients, max_tokens ${MAX_TOKENS}, ${SECONDS} s: ${requests} requests, ${round(tokens / SECONDS, 0)} tok/s`, rows);
console.log(`\nprofile: ${join(dir, file)}\nwrote ${writeResults("profile", {stream, clients: CLIENTS, maxTokens: MAX_TOKENS, chat: CHAT, requests, tokens, rows})}`);
