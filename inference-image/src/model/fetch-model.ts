import {createHash, type Hash} from "node:crypto";
import {createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statfsSync, statSync, writeFileSync} from "node:fs";
import {dirname} from "node:path";
import {Readable} from "node:stream";
import {fileURLToPath} from "node:url";
import {EXIT_CONFIG, FETCH_ENV} from "../../contract/index.js";
import {DEFAULT_HF_ENDPOINT, downloadFailureMessage, resolveModelUrl, shardUris, type DownloadFailureReason, type DownloadProgress} from "../../contract/model-download.js";
import {fileSha256} from "./cache/model-digest.js";

/** Back-off before reconnect `attempt` (1-based): 1 s doubling, at most 30 s. */
export const backoffMs = (attempt: number) => Math.min(30_000, 1000 * 2 ** (attempt - 1));

/**
 * A failed download; the message is what `kubectl describe` shows as ModelDownloadFailed,
 * and `reason` the condition's reason.
 */
export class ModelDownloadError extends Error {
  override name = "ModelDownloadError";
  constructor(
    message: string,
    readonly reason: DownloadFailureReason = "HttpError"
  ) {
    super(message);
  }
}

export interface FetchOptions {
  readonly sha256?: string | undefined;
  /** Bearer token for the host (hf:// sources). */
  readonly token?: string | undefined;
  readonly hfEndpoint?: string;
  /** No byte for this long: reconnect and resume. Defaults to 60 s. */
  readonly stallTimeoutMs?: number;
  /** Reconnects before giving up. Defaults to 10. */
  readonly maxRetries?: number;
  /** Free bytes where the file goes; defaults to statfs. */
  readonly freeBytes?: (dir: string) => number;
  /** Told of progress (bytes so far, total when known); `verifying` while hashing a file already there. */
  readonly onProgress?: (p: {bytes: number; total: number | undefined; verifying?: boolean}) => void;
  readonly fetchImpl?: typeof fetch;
  /** Back-off before reconnect `attempt`; defaults to 1 s doubling to 30 s. */
  readonly backoff?: (attempt: number) => number;
}

const freeBytesOf = (dir: string) => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};

/**
 * Downloads a model to `path`: resumes with HTTP Range after a dropped or stalled
 * connection (no byte for `stallTimeoutMs`), with bounded, backed-off retries; checks free
 * space against the announced length before writing; hashes while writing (sha256, from
 * the spec or, for hf://, the hub's LFS digest) and renames into place only once verified,
 * so a half-written or corrupt file is never served. A verified existing file is kept, and
 * a `.part` left by an earlier attempt on a persistent volume is resumed.
 */
export async function fetchModel(uri: string, path: string, options: FetchOptions = {}): Promise<"downloaded" | "present"> {
  const parts = shardsOf(uri, path);
  if (!parts) return fetchFile(uri, path, options);
  // A sharded GGUF: every part next to the first, each resumed and verified on its own
  // (the spec's sha256 names the first part; hf:// parts carry their own digests).
  let outcome: "downloaded" | "present" = "present";
  let before = 0;
  for (const [i, part] of parts.entries()) {
    // Progress counts the parts done so far plus this one.
    const onProgress = options.onProgress && ((p: {bytes: number; total: number | undefined; verifying?: boolean}) => options.onProgress!({...p, bytes: before + p.bytes, total: p.total === undefined ? undefined : before + p.total}));
    const got = await fetchFile(part.uri, part.path, {...options, ...(i === 0 ? {} : {sha256: undefined}), ...(onProgress ? {onProgress} : {})});
    if (got === "downloaded") outcome = "downloaded";
    before += statSync(part.path).size;
  }
  return outcome;
}

/**
 * The parts of a sharded GGUF (`<name>-00001-of-0000N.gguf`, as llama.cpp's gguf-split
 * names them) when `uri` names the first one; undefined for a single file. Pure.
 */
export function shardsOf(uri: string, path: string): Array<{uri: string; path: string}> | undefined {
  const uris = shardUris(uri);
  if (!uris || !/-00001-of-\d{5}\.gguf$/.test(path)) return undefined;
  return uris.map((u, i) => ({uri: u, path: path.replace(/-00001-of-(\d{5})\.gguf$/, `-${String(i + 1).padStart(5, "0")}-of-$1.gguf`)}));
}

async function fetchFile(uri: string, path: string, options: FetchOptions): Promise<"downloaded" | "present"> {
  const fetchImpl = options.fetchImpl ?? fetch;
  let resolved: {url: string; hub: boolean};
  try {
    resolved = resolveModelUrl(uri, options.hfEndpoint ?? DEFAULT_HF_ENDPOINT);
  } catch (e) {
    throw new ModelDownloadError(e instanceof Error ? e.message : String(e), "InvalidSource");
  }
  const auth: Record<string, string> = options.token ? {authorization: `Bearer ${options.token}`} : {};
  const deny = (status: number) =>
    new ModelDownloadError(`GET ${uri}: HTTP ${status}: ${options.token ? "the token was refused" : "a token is needed (spec.model.tokenSecretRef)"}`, "Unauthorized");

  // The hub answers the resolve URL with a redirect whose headers carry the LFS file's sha256.
  let url = resolved.url;
  let expected = options.sha256;
  if (resolved.hub) {
    for (let hop = 0; hop < 5; hop++) {
      const head = await fetchImpl(url, {method: "HEAD", redirect: "manual", headers: auth}).catch((e: unknown) => {
        throw new ModelDownloadError(`HEAD ${url}: ${e instanceof Error ? e.message : String(e)}`);
      });
      if (head.status === 401 || head.status === 403) throw deny(head.status);
      const linked = head.headers.get("x-linked-etag")?.replace(/^W\//, "").replaceAll('"', "");
      if (!expected && linked && /^[0-9a-f]{64}$/.test(linked)) expected = linked;
      const location = head.headers.get("location");
      if (head.status >= 300 && head.status < 400 && location) url = new URL(location, url).toString();
      else {
        if (!head.ok) throw new ModelDownloadError(`HEAD ${url}: HTTP ${head.status}`);
        break;
      }
    }
  }

  mkdirSync(dirname(path), {recursive: true});
  if (existsSync(path)) {
    const size = statSync(path).size;
    options.onProgress?.({bytes: size, total: size, verifying: true});
    if (!expected || (await fileSha256(path)) === expected) return "present";
  }
  const partial = `${path}.part`;
  let hash = createHash("sha256");
  let offset = 0;
  if (existsSync(partial)) {
    // Left by an earlier attempt (a persistent volume): hashed again before resuming it.
    options.onProgress?.({bytes: statSync(partial).size, total: undefined, verifying: true});
    offset = await hashExisting(partial, hash);
  }
  const stallMs = options.stallTimeoutMs ?? 60_000;
  const maxRetries = options.maxRetries ?? 10;
  let total: number | undefined;
  let checkedSpace = false;
  let retries = 0;
  let lastError = "";

  for (;;) {
    const result = await transfer();
    if (result === "done") break;
    retries++;
    if (retries > maxRetries) {
      // The .part stays: on a persistent volume (the shared cache) the next attempt resumes it.
      throw new ModelDownloadError(`downloading ${uri} failed after ${maxRetries} retries: ${lastError}`, "TooManyRetries");
    }
    await new Promise((r) => setTimeout(r, (options.backoff ?? backoffMs)(retries)));
  }

  const digest = hash.digest("hex");
  if (expected && digest !== expected) {
    rmSync(partial, {force: true});
    throw new ModelDownloadError(`sha256 mismatch for ${uri}: expected ${expected}, got ${digest}`, "DigestMismatch");
  }
  renameSync(partial, path);
  return "downloaded";

  /** One connection: "done" when the file is complete, "retry" after a drop or stall. */
  async function transfer(): Promise<"done" | "retry"> {
    const abort = new AbortController();
    let stalled = false;
    // Restarted by every chunk: it fires only after stallMs without a byte.
    const timer = setTimeout(() => {
      stalled = true;
      abort.abort();
    }, stallMs);
    const alive = () => timer.refresh();
    try {
      const res = await fetchImpl(url, {redirect: "follow", signal: abort.signal, headers: {...auth, ...(offset > 0 ? {range: `bytes=${offset}-`} : {})}});
      if (res.status === 401 || res.status === 403) throw deny(res.status);
      if (res.status === 416 && offset > 0) {
        // Nothing left past what we hold: the file may be complete already (the digest decides).
        if (total === undefined || offset >= total) return "done";
      }
      if (!res.ok || !res.body) {
        if (res.status >= 500 || res.status === 429) {
          lastError = `HTTP ${res.status}`;
          return "retry";
        }
        throw new ModelDownloadError(`GET ${uri}: HTTP ${res.status}`);
      }
      if (offset > 0 && res.status !== 206) {
        // The host ignored the Range: start over.
        offset = 0;
        hash = createHash("sha256");
        rmSync(partial, {force: true});
      }
      const length = Number(res.headers.get("content-length") ?? NaN);
      const range = /\/(\d+)$/.exec(res.headers.get("content-range") ?? "");
      total = range ? Number(range[1]) : Number.isFinite(length) ? offset + length : total;
      if (!checkedSpace && total !== undefined) {
        checkedSpace = true;
        const free = (options.freeBytes ?? freeBytesOf)(dirname(path));
        const need = total - offset;
        if (free < need) throw new ModelDownloadError(`not enough space for ${uri}: it needs ${need} more bytes, the volume has ${free} free`, "InsufficientStorage");
      }
      const out = createWriteStream(partial, {flags: "a"});
      // A write that fails (no permission, a full or read-only volume) is a verdict, not a retry.
      let writeError: Error | undefined;
      out.on("error", (e) => (writeError = e));
      const failedWrite = () => new ModelDownloadError(`writing ${partial}: ${writeError!.message}`, "WriteFailed");
      try {
        for await (const chunk of Readable.fromWeb(res.body as never) as AsyncIterable<Buffer>) {
          if (writeError) throw failedWrite();
          alive();
          hash.update(chunk);
          offset += chunk.length;
          if (!out.write(chunk)) await new Promise<void>((r) => (out.once("drain", () => r()), out.once("error", () => r())));
          options.onProgress?.({bytes: offset, total});
        }
      } finally {
        if (writeError) out.destroy();
        else await new Promise<void>((r) => out.end(() => r()));
      }
      if (writeError) throw failedWrite();
      if (total !== undefined && offset < total) {
        lastError = `connection closed at ${offset} of ${total} bytes`;
        return "retry";
      }
      return "done";
    } catch (error) {
      if (error instanceof ModelDownloadError) throw error;
      lastError = stalled ? `no data for ${stallMs / 1000} s at ${offset} bytes` : error instanceof Error ? `${error.message}${error.cause ? ` (${String(error.cause)})` : ""}` : String(error);
      return "retry";
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Hashes a partial file left by an earlier attempt; its length is where the transfer resumes. */
async function hashExisting(file: string, hash: Hash): Promise<number> {
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) hash.update(chunk);
  return statSync(file).size;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
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
}
