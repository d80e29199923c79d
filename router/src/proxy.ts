import {randomUUID} from "node:crypto";
import {Agent, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse} from "node:http";
import {REPLICA_HEADER, REQUEST_ID_HEADER} from "../../contract/index.js";
import type {Logger} from "../../contract/log.js";
import type {Replica} from "./balancer.js";
import {Cancellation} from "./cancel.js";
import {sendError} from "./errors.js";
import type {ReplicaPool} from "./pool.js";
import {affinityKey, requestFacts, type RequestFacts} from "./request-key.js";
import {failureOf, MAX_RETRIES, retryableStatus, worthWaiting, type FailureReason} from "./retry.js";

export interface ProxyOptions {
  /** The LlmService's name, for messages. */
  readonly service: string;
  /** The model id the replicas serve; requests naming another get 404 here. */
  readonly modelName: string;
  /** Whether PrefixHash keys are computed at all (LeastLoad needs none). */
  readonly prefixAffinity: boolean;
  readonly maxHeld: number;
  readonly holdTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxRequestBytes: number;
  /** How often a held stream hears an SSE comment. Defaults to 5000 (ms). */
  readonly heartbeatMs?: number;
}

export interface ProxyObserver {
  response(code: number): void;
  timeToFirstByte(seconds: number): void;
  retry(reason: FailureReason): void;
  affinity(hit: boolean): void;
}

/** Seconds a client is told to wait (Retry-After) when the router cannot hold its request. */
export const RETRY_AFTER_SECONDS = 5;

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization", "proxy-authenticate"]);

/** A failed attempt: why, and the replica's own answer when it gave one (429, 503). */
interface Failure {
  readonly reason: FailureReason;
  readonly response?: {status: number; headers: IncomingHttpHeaders; body: Buffer};
}

type Attempt = {kind: "response"; upstream: ClientRequest; response: IncomingMessage; release: (served?: boolean) => void; sentAt: number} | {kind: "failed"; reason: FailureReason} | {kind: "cancelled"};

/**
 * The router's request path: read the (small, JSON) body, check the model, pick a replica
 * (pool.ts, balancer.ts), forward, and retry another replica while nothing has reached the
 * client yet (retry.ts). With no replica to try it holds the request until one is ready,
 * keeping a held stream alive with SSE comments. Once the replica's answer starts, bytes
 * flow through unbuffered, and a client that goes away aborts the upstream request.
 */
export class RouterProxy {
  readonly #agent = new Agent({keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024, scheduling: "lifo"});
  readonly #addresses = new Map<string, {host: string; port: number}>();

  constructor(
    private readonly pool: ReplicaPool,
    private readonly options: ProxyOptions,
    private readonly observer: ProxyObserver,
    private readonly log: Logger
  ) {}

  close(): void {
    this.#agent.destroy();
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const id = firstHeader(req.headers[REQUEST_ID_HEADER]) || randomUUID();
    res.setHeader(REQUEST_ID_HEADER, id);
    const reply = (status: number, type: string, code: string, message: string, headers?: Record<string, string>, param?: string | null) => {
      this.observer.response(status);
      sendError(res, status, type, code, message, headers, param ?? null);
    };

    const body = await readBody(req, this.options.maxRequestBytes);
    if (body === "aborted") return;
    if (body === "too_large") return reply(413, "invalid_request_error", "request_too_large", `request body exceeds ${this.options.maxRequestBytes} bytes`);
    const facts = factsOf(req, body);
    if (facts.model !== undefined && facts.model !== this.options.modelName) {
      return reply(404, "invalid_request_error", "model_not_found", `The model '${facts.model}' does not exist on this server.`, {}, "model");
    }
    const key = this.options.prefixAffinity && facts.prefix !== "" ? affinityKey(firstHeader(req.headers.authorization), facts.prefix) : "";

    const cancel = new Cancellation();
    let timedOut = false;
    const deadline = setTimeout(() => {
      timedOut = true;
      cancel.cancel();
    }, this.options.requestTimeoutMs);
    res.on("close", () => {
      clearTimeout(deadline);
      cancel.cancel();
    });
    const holdUntil = started + this.options.holdTimeoutMs;
    const tried = new Set<string>();
    let retries = 0;
    let last: Failure | undefined;
    let heldStream: NodeJS.Timeout | undefined; // set once this router answers a held stream itself
    // Whether this request waited for a replica: the service was at zero or all its replicas
    // refused, and a full queue on the replica that just became ready means "not yet", not
    // "the service is busy": such a request is held again rather than answered 429.
    let wasHeld = false;

    const giveUp = (failure: Failure | undefined) => {
      if (failure?.response && !res.headersSent) {
        this.observer.response(failure.response.status);
        res.writeHead(failure.response.status, responseHeaders(failure.response.headers, undefined)).end(failure.response.body);
      } else if (res.headersSent) {
        // A held stream: its 200 went out while it waited, so the error is an SSE event.
        this.observer.response(503);
        res.end(`data: ${JSON.stringify({error: {message: `no replica of ${this.options.service} could serve this request`, type: "server_error", param: null, code: "no_replica"}})}\n\n`);
      } else reply(502, "server_error", "upstream_unavailable", `no replica of ${this.options.service} could serve this request (${failure?.reason ?? "unknown"})`);
    };

    try {
      for (;;) {
        if (cancel.cancelled) {
          if (timedOut) giveUpTimeout(res, this.observer, this.options.requestTimeoutMs);
          return;
        }
        const choice = this.pool.choose(key, tried);
        if (!choice) {
          if (!worthWaiting(last?.reason, wasHeld)) return giveUp(last);
          const remaining = Math.min(holdUntil, started + this.options.requestTimeoutMs) - performance.now();
          if (remaining <= 0) {
            if (res.headersSent) return giveUp(last);
            return reply(503, "server_error", "no_ready_replica", `no replica of ${this.options.service} became ready within ${Math.round(this.options.holdTimeoutMs / 1000)} s`, {"retry-after": String(RETRY_AFTER_SECONDS)});
          }
          if (this.pool.held >= this.options.maxHeld) {
            if (res.headersSent) return giveUp(last);
            return reply(503, "server_error", "too_many_held_requests", `${this.options.service} has no ready replica and ${this.options.maxHeld} requests already wait for one`, {"retry-after": String(RETRY_AFTER_SECONDS)});
          }
          if (facts.stream && !res.headersSent) heldStream = this.#startHeldStream(res, started);
          wasHeld = true;
          await this.pool.hold(remaining, cancel);
          // Woken by a change: every replica may be tried again, one that restarted under
          // the same pod name (an OOM kill, a liveness restart) included.
          tried.clear();
          continue;
        }
        const attempt = await this.#attempt(choice.replica, req, body, id, cancel);
        // The client left or the deadline passed: not the replica's fault, so no ejection.
        if (attempt.kind === "cancelled") continue;
        if (attempt.kind === "failed") {
          this.pool.eject(choice.replica.name);
          last = {reason: attempt.reason};
        } else {
          const status = attempt.response.statusCode ?? 502;
          const reason = retryableStatus(status);
          if (!reason) {
            clearInterval(heldStream);
            if (choice.affine !== undefined) this.observer.affinity(choice.affine);
            this.#pipe(attempt, choice.replica, res, status);
            return;
          }
          const failed = await drain(attempt.response);
          attempt.release();
          last = {reason, response: {status, headers: attempt.response.headers, body: failed}};
        }
        // Nothing reached the client: another replica may take it.
        tried.add(choice.replica.name);
        if (cancel.cancelled) continue;
        // A woken request that met a full queue waits for room instead of spending a retry.
        if (wasHeld && last.reason === "queue_full") continue;
        if (retries >= MAX_RETRIES) return giveUp(last);
        retries++;
        this.observer.retry(last.reason);
        this.log.debug("retrying on another replica", {requestId: id, replica: choice.replica.name, reason: last.reason});
      }
    } finally {
      // Every way out (the client leaving during the hold too): a held stream's heartbeat
      // must not outlive its request.
      clearInterval(heldStream);
    }
  }

  /** Answers a held stream now (200, SSE) and keeps it alive with comments while it waits. */
  #startHeldStream(res: ServerResponse, started: number): NodeJS.Timeout {
    res.writeHead(200, {"content-type": "text/event-stream", "cache-control": "no-cache", "x-accel-buffering": "no"});
    const say = () => res.write(`: waiting for a ready replica of ${this.options.service} (${Math.round((performance.now() - started) / 1000)} s)\n\n`);
    say();
    return setInterval(say, this.options.heartbeatMs ?? 5_000);
  }

  #attempt(replica: Replica, req: IncomingMessage, body: Buffer, id: string, cancel: Cancellation): Promise<Attempt> {
    const release = this.pool.acquire(replica.name);
    const {host, port} = this.#address(replica.url);
    return new Promise<Attempt>((resolve) => {
      const sentAt = performance.now();
      const upstream = httpRequest({host, port, method: req.method, path: req.url, headers: requestHeaders(req, id, body.length), agent: this.#agent}, (response) => {
        forget();
        resolve({kind: "response", upstream, response, release, sentAt});
      });
      const forget = cancel.onCancel(() => upstream.destroy());
      upstream.on("error", (e: NodeJS.ErrnoException) => {
        release();
        forget();
        // Destroyed because the client left or the deadline passed: that reads as a reset,
        // but the replica did nothing wrong (ejecting it sidelined healthy replicas).
        resolve(cancel.cancelled ? {kind: "cancelled"} : {kind: "failed", reason: failureOf(e)});
      });
      upstream.end(body);
    });
  }

  /** Host and port of a replica URL, parsed once. */
  #address(url: string): {host: string; port: number} {
    let a = this.#addresses.get(url);
    if (!a) {
      const u = new URL(url);
      a = {host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || 80)};
      if (this.#addresses.size > 10_000) this.#addresses.clear();
      this.#addresses.set(url, a);
    }
    return a;
  }

  /** The replica's answer, streamed to the client as it comes. */
  #pipe(attempt: Extract<Attempt, {kind: "response"}>, replica: Replica, res: ServerResponse, status: number): void {
    const {response, upstream, release} = attempt;
    if (!res.headersSent) res.writeHead(status, responseHeaders(response.headers, replica.name));
    else if (status !== 200) {
      // A held stream whose replica refused it: say why as an SSE event, then end.
      void drain(response).then((b) => res.end(`data: ${b.toString() || JSON.stringify({error: {message: `HTTP ${status}`, type: "server_error", param: null, code: null}})}\n\n`));
      release();
      this.observer.response(status);
      return;
    }
    this.observer.response(status);
    response.once("data", () => this.observer.timeToFirstByte((performance.now() - attempt.sentAt) / 1000));
    response.pipe(res);
    const done = () => release(true);
    response.on("end", done);
    response.on("error", () => {
      done();
      res.destroy();
    });
    response.on("aborted", () => res.destroy());
    res.on("close", () => {
      // The client went away first: the replica stops generating and frees its slot.
      if (!response.complete) upstream.destroy();
      done();
    });
  }
}

function giveUpTimeout(res: ServerResponse, observer: ProxyObserver, ms: number): void {
  observer.response(504);
  if (res.headersSent) res.end(`data: ${JSON.stringify({error: {message: `request timed out after ${ms / 1000} s`, type: "server_error", param: null, code: "timeout"}})}\n\n`);
  else sendError(res, 504, "server_error", "timeout", `request timed out after ${ms / 1000} s waiting for a replica`);
}

function factsOf(req: IncomingMessage, body: Buffer): RequestFacts {
  if (body.length === 0 || !(req.headers["content-type"] ?? "").includes("json")) return {model: undefined, stream: false, prefix: ""};
  try {
    return requestFacts(JSON.parse(body.toString("utf8")));
  } catch {
    return {model: undefined, stream: false, prefix: ""}; // the replica answers malformed JSON with its own 400
  }
}

const firstHeader = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

function requestHeaders(req: IncomingMessage, id: string, length: number): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && k !== "host" && k !== "content-length") out[k] = v;
  out[REQUEST_ID_HEADER] = id;
  out["content-length"] = length;
  const forwarded = firstHeader(req.headers["x-forwarded-for"]);
  const peer = req.socket.remoteAddress;
  if (peer) out["x-forwarded-for"] = forwarded ? `${forwarded}, ${peer}` : peer;
  return out;
}

function responseHeaders(headers: IncomingHttpHeaders, replica: string | undefined): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  if (replica) out[REPLICA_HEADER] = replica;
  return out;
}

/** The request body, whole: requests are small JSON, and a retry must send it again. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer | "too_large" | "aborted"> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners("data");
        req.resume();
        resolve("too_large");
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks, size)));
    req.on("error", () => resolve("aborted"));
    req.on("aborted", () => resolve("aborted"));
  });
}

/** Reads a refused answer's (small) body so the connection can be reused, keeping it for passing through. */
function drain(response: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    response.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= 65_536) chunks.push(c);
    });
    response.on("end", () => resolve(Buffer.concat(chunks)));
    response.on("error", () => resolve(Buffer.concat(chunks)));
    response.on("aborted", () => resolve(Buffer.concat(chunks)));
  });
}
