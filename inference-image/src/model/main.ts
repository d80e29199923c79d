import {writeFileSync} from "node:fs";
import {EXIT_CONFIG, FETCH_ENV} from "../../../contract/index.js";
import {DEFAULT_HF_ENDPOINT, downloadFailureMessage, type DownloadProgress} from "../../../contract/model-download.js";
import {fetchModel, ModelDownloadError} from "./fetch-model.js";

/**
 * The download program (the shared cache's Job and the per-pod init container): reads
 * FETCH_ENV, downloads, logs a progress line every 5 s (the operator reads the last ones
 * through pods/log), and on failure writes `<Reason>: <message>` as the termination message.
 */
const env = process.env;
const url = env[FETCH_ENV.url];
const path = env[FETCH_ENV.path];
const number = (name: string, fallback: number) => {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`fetch-model: ${name} must be a non-negative integer, not '${raw}'\n`);
    process.exit(EXIT_CONFIG);
  }
  return n;
};
if (!url || !path) {
  process.stderr.write(`fetch-model: ${FETCH_ENV.url} and ${FETCH_ENV.path} are required\n`);
  process.exit(EXIT_CONFIG);
}
let last = 0;
let started = Date.now();
let startBytes = 0;
fetchModel(url, path, {
  sha256: env[FETCH_ENV.sha256],
  token: env[FETCH_ENV.token],
  hfEndpoint: env[FETCH_ENV.hfEndpoint] || DEFAULT_HF_ENDPOINT,
  stallTimeoutMs: number(FETCH_ENV.stallTimeoutSeconds, 60) * 1000,
  maxRetries: number(FETCH_ENV.maxRetries, 10),
  // One progress line every 5 s: bytes, total, rate and ETA, for `kubectl logs -c fetch-model`.
  // The operator reads the last of these through pods/log into status.model.
  onProgress: ({bytes, total, verifying}) => {
    const now = Date.now();
    if (verifying) {
      // Hashing what an earlier attempt left: the rate counts only bytes fetched from now on.
      started = now;
      startBytes = bytes;
    } else if (now - last < 5000) return;
    last = now;
    const rate = (bytes - startBytes) / Math.max(0.001, (now - started) / 1000);
    const line: DownloadProgress = {
      msg: verifying ? "verifying" : "progress",
      bytes,
      total: total ?? null,
      bytes_per_second: Math.round(rate),
      eta_seconds: total && rate > 0 ? Math.round((total - bytes) / rate) : null
    };
    process.stdout.write(JSON.stringify(line) + "\n");
  }
}).then(
  (outcome) => process.stdout.write(JSON.stringify({msg: `model ${outcome}`, url, path}) + "\n"),
  (error: unknown) => {
    // `<reason>: <message>`: the operator shows the reason in the ModelReady condition.
    const message = error instanceof ModelDownloadError ? downloadFailureMessage(error.reason, error.message) : downloadFailureMessage("HttpError", error instanceof Error ? error.message : String(error));
    process.stderr.write(`fetch-model: ${message}\n`);
    // Kubernetes shows this file's content as the container's termination message.
    try {
      writeFileSync("/dev/termination-log", message);
    } catch {
      // not in a pod
    }
    process.exit(1);
  }
);
