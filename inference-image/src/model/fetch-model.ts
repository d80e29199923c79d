import {createHash, type Hash} from "node:crypto";
import {createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statfsSync, statSync} from "node:fs";
import {dirname} from "node:path";
import {Readable} from "node:stream";
import {DEFAULT_HF_ENDPOINT, resolveModelUrl, shardUris, type DownloadFailureReason} from "../../../contract/model-download.js";
import {fileSha256} from "../cache/model-digest.js";

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
  let resolved: {url: string; hub: boolean};
  try {
    resolved = resolveModelUrl(uri, options.hfEndpoint ?? DEFAULT_HF_ENDPOINT);
  } catch (e) {
    throw new ModelDownloadError(e instanceof Error ? e.message : String(e), "InvalidSource");
  }
  const expected = resolved.hub ? await hubDigest(resolved.url, uri, options) : options.sha256;
  makeFolder(dirname(path));
  if (existsSync(path)) {
    const size = statSync(path).size;
    options.onProgress?.({bytes: size, total: size, verifying: true});
    if (!expected || (await fileSha256(path)) === expected) return "present";
  }
  const download = await Download.resume(uri, resolved.url, path, options);
  const digest = await download.run();
  if (expected && digest !== expected) {
    rmSync(download.partial, {force: true});
    throw new ModelDownloadError(`sha256 mismatch for ${uri}: expected ${expected}, got ${digest}`, "DigestMismatch");
  }
  renameSync(download.partial, path);
  return "downloaded";
}

/**
 * The model's folder in the volume. A volume this user may not write to (a hostPath or a
 * storage driver that ignores the pod's fsGroup) is the cluster's setup, not the network's:
 * WriteFailed, saying so.
 */
function makeFolder(dir: string): void {
  try {
    mkdirSync(dir, {recursive: true});
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "EACCES" || code === "EPERM" || code === "EROFS" ? `: the volume is not writable by uid ${process.getuid?.() ?? "?"} (its storage must honour the pod's fsGroup, or be writable by the pod's user)` : "";
    throw new ModelDownloadError(`cannot create ${dir}: ${(e as {message?: string}).message ?? String(e)}${why}`, "WriteFailed");
  }
}

/** The token goes to the host the model was named on only: never to a CDN it redirects to (huggingface_hub drops it too). */
const authFor = (url: string, origin: string, options: FetchOptions): Record<string, string> => (options.token && new URL(url).host === new URL(origin).host ? {authorization: `Bearer ${options.token}`} : {});

const denied = (uri: string, status: number, options: FetchOptions) =>
  new ModelDownloadError(`GET ${uri}: HTTP ${status}: ${options.token ? "the token was refused" : "a token is needed (spec.model.tokenSecretRef)"}`, "Unauthorized");

/** Redirects followed per request, at most. */
const MAX_HOPS = 5;

/**
 * A request to `origin`, following its redirects by hand: each hop gets the token only if it
 * is on the origin's host. Resolved anew for every connection, so a resume never goes to a
 * signed CDN URL that expired in the meantime (about an hour for Xet-backed files). A 401 or
 * 403 from the origin is the token's verdict; from a host it redirected to, it is that URL's
 * (`fromRedirect`). Returns the last response with the headers of the first redirect.
 */
async function follow(origin: string, init: {method: "GET" | "HEAD"; headers?: Record<string, string>; signal?: AbortSignal}, options: FetchOptions): Promise<{res: Response; fromRedirect: boolean; firstRedirect: Headers | undefined}> {
  const fetchImpl = options.fetchImpl ?? fetch;
  let url = origin;
  let firstRedirect: Headers | undefined;
  for (let hop = 0; ; hop++) {
    const res = await fetchImpl(url, {...init, redirect: "manual", headers: {...init.headers, ...authFor(url, origin, options)}});
    const location = res.headers.get("location");
    if (res.status < 300 || res.status >= 400 || !location || hop >= MAX_HOPS) return {res, fromRedirect: hop > 0, firstRedirect};
    firstRedirect ??= res.headers;
    await res.body?.cancel();
    url = new URL(location, url).toString();
  }
}

/** The hub answers the resolve URL with a redirect whose headers carry the LFS file's sha256. */
async function hubDigest(start: string, uri: string, options: FetchOptions): Promise<string | undefined> {
  const {res, fromRedirect, firstRedirect} = await follow(start, {method: "HEAD"}, options).catch((e: unknown) => {
    throw new ModelDownloadError(`HEAD ${start}: ${e instanceof Error ? e.message : String(e)}`);
  });
  if ((res.status === 401 || res.status === 403) && !fromRedirect) throw denied(uri, res.status, options);
  if (!res.ok && !fromRedirect) throw new ModelDownloadError(`HEAD ${start}: HTTP ${res.status}`);
  if (options.sha256) return options.sha256;
  const linked = (firstRedirect ?? res.headers).get("x-linked-etag")?.replace(/^W\//, "").replaceAll('"', "");
  return linked && /^[0-9a-f]{64}$/.test(linked) ? linked : undefined;
}

/**
 * One file's transfer into `<path>.part`, over as many connections as it takes: each
 * resumes with a Range where the last one stopped, hashing as it writes.
 */
class Download {
  #hash: Hash;
  #offset: number;
  #total: number | undefined;
  #checkedSpace = false;
  #lastError = "";
  readonly #stallMs: number;

  private constructor(
    private readonly uri: string,
    private readonly url: string,
    private readonly path: string,
    private readonly options: FetchOptions,
    hash: Hash,
    offset: number
  ) {
    this.#hash = hash;
    this.#offset = offset;
    this.#stallMs = options.stallTimeoutMs ?? 60_000;
  }

  get partial(): string {
    return `${this.path}.part`;
  }

  /** A download that continues a `.part` left by an earlier attempt (a persistent volume), hashed again first. */
  static async resume(uri: string, url: string, path: string, options: FetchOptions): Promise<Download> {
    const hash = createHash("sha256");
    const partial = `${path}.part`;
    let offset = 0;
    if (existsSync(partial)) {
      options.onProgress?.({bytes: statSync(partial).size, total: undefined, verifying: true});
      offset = await hashExisting(partial, hash);
    }
    return new Download(uri, url, path, options, hash, offset);
  }

  /** Transfers until the file is complete; resolves with its sha256. */
  async run(): Promise<string> {
    const maxRetries = this.options.maxRetries ?? 10;
    for (let retries = 0; (await this.#connection()) !== "done"; ) {
      retries++;
      if (retries > maxRetries) {
        // The .part stays: on a persistent volume (the shared cache) the next attempt resumes it.
        throw new ModelDownloadError(`downloading ${this.uri} failed after ${maxRetries} retries: ${this.#lastError}`, "TooManyRetries");
      }
      await new Promise((r) => setTimeout(r, (this.options.backoff ?? backoffMs)(retries)));
    }
    return this.#hash.digest("hex");
  }

  /** One connection: "done" when the file is complete, "retry" after a drop or stall. */
  async #connection(): Promise<"done" | "retry"> {
    const abort = new AbortController();
    let stalled = false;
    // Restarted by every chunk: it fires only after stallMs without a byte.
    const timer = setTimeout(() => {
      stalled = true;
      abort.abort();
    }, this.#stallMs);
    try {
      const {res, fromRedirect} = await follow(this.url, {method: "GET", signal: abort.signal, headers: this.#offset > 0 ? {range: `bytes=${this.#offset}-`} : {}}, this.options);
      const verdict = this.#check(res, fromRedirect);
      if (verdict) return verdict;
      await this.#write(res, () => timer.refresh());
      if (this.#total !== undefined && this.#offset < this.#total) {
        this.#lastError = `connection closed at ${this.#offset} of ${this.#total} bytes`;
        return "retry";
      }
      return "done";
    } catch (error) {
      if (error instanceof ModelDownloadError) throw error;
      this.#lastError = stalled ? `no data for ${this.#stallMs / 1000} s at ${this.#offset} bytes` : error instanceof Error ? `${error.message}${error.cause ? ` (${String(error.cause)})` : ""}` : String(error);
      return "retry";
    } finally {
      clearTimeout(timer);
    }
  }

  /** What a response's status and headers decide before its body: done, retry, a failure, or (undefined) read it. */
  #check(res: Response, fromRedirect: boolean): "done" | "retry" | undefined {
    if (res.status === 401 || res.status === 403) {
      if (!fromRedirect) throw denied(this.uri, res.status, this.options);
      // A signed URL the origin redirected to was refused: it expired (or was revoked). The
      // next connection asks the origin for a new one; 403 was final before.
      this.#lastError = `HTTP ${res.status} from the URL ${new URL(this.url).host} redirected to (an expired signed URL?)`;
      return "retry";
    }
    // Nothing left past what we hold: the file may be complete already (the digest decides).
    if (res.status === 416 && this.#offset > 0 && (this.#total === undefined || this.#offset >= this.#total)) return "done";
    if (!res.ok || !res.body) {
      if (res.status >= 500 || res.status === 429) {
        this.#lastError = `HTTP ${res.status}`;
        return "retry";
      }
      throw new ModelDownloadError(`GET ${this.uri}: HTTP ${res.status}`);
    }
    if (this.#offset > 0 && res.status !== 206) {
      // The host ignored the Range: start over.
      this.#offset = 0;
      this.#hash = createHash("sha256");
      rmSync(this.partial, {force: true});
    }
    const length = Number(res.headers.get("content-length") ?? NaN);
    const range = /\/(\d+)$/.exec(res.headers.get("content-range") ?? "");
    this.#total = range ? Number(range[1]) : Number.isFinite(length) ? this.#offset + length : this.#total;
    if (!this.#checkedSpace && this.#total !== undefined) {
      this.#checkedSpace = true;
      const free = (this.options.freeBytes ?? freeBytesOf)(dirname(this.path));
      const need = this.#total - this.#offset;
      if (free < need) throw new ModelDownloadError(`not enough space for ${this.uri}: it needs ${need} more bytes, the volume has ${free} free`, "InsufficientStorage");
    }
    return undefined;
  }

  /** Appends the body to the `.part`, hashing it; a failed write is a verdict (WriteFailed), not a retry. */
  async #write(res: Response, alive: () => void): Promise<void> {
    const out = createWriteStream(this.partial, {flags: "a"});
    let writeError: Error | undefined;
    out.on("error", (e) => (writeError = e));
    const failedWrite = () => new ModelDownloadError(`writing ${this.partial}: ${writeError!.message}`, "WriteFailed");
    try {
      for await (const chunk of Readable.fromWeb(res.body as never) as AsyncIterable<Buffer>) {
        if (writeError) throw failedWrite();
        alive();
        this.#hash.update(chunk);
        this.#offset += chunk.length;
        if (!out.write(chunk)) await drained(out);
        this.options.onProgress?.({bytes: this.#offset, total: this.#total});
      }
    } finally {
      if (writeError) out.destroy();
      else await new Promise<void>((r) => out.end(() => r()));
    }
    if (writeError) throw failedWrite();
  }
}

/** Waits for a stream's buffer to drain, or for it to fail; leaves no listener behind (one per chunk leaked before). */
function drained(out: NodeJS.WritableStream): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      out.off("drain", done);
      out.off("error", done);
      resolve();
    };
    out.once("drain", done);
    out.once("error", done);
  });
}

/** Hashes a partial file left by an earlier attempt; its length is where the transfer resumes. */
async function hashExisting(file: string, hash: Hash): Promise<number> {
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) hash.update(chunk);
  return statSync(file).size;
}
