import {createServer, type IncomingMessage, type Server, type ServerResponse} from "node:http";

/** How the host serves one file. */
export interface HostedFile {
  readonly body: Buffer;
  /** Bytes per second (default: as fast as it goes). */
  readonly rate?: number;
  /** The first GET stops after this fraction of the file: "drop" closes the connection, "stall" goes silent. */
  readonly firstGet?: {readonly after: number; readonly then: "drop" | "stall"};
  /** The bearer token it requires (401 without it, 403 with another). */
  readonly token?: string;
  /** The hub's LFS digest, sent as X-Linked-Etag with the resolve redirect. */
  readonly linkedSha256?: string;
  /** The CDN answers HEAD with 403, as S3-signed GET URLs do. */
  readonly cdnRefusesHead?: boolean;
}

export interface Transfer {
  readonly path: string;
  readonly method: string;
  readonly range: string | undefined;
  readonly at: number;
  /** Body bytes sent so far. */
  bytes: number;
  /** When the last byte went out. */
  lastByteAt: number;
}

/**
 * A model host for tests, playing the Hugging Face hub: `/<org>/<repo>/resolve/<rev>/<file>`
 * redirects (302, with the LFS digest) to `/cdn/<file>`, which serves Range requests and
 * can throttle, drop or stall the first transfer and require a token. Every request is
 * recorded with the body bytes it was sent.
 */
export class ModelHost {
  readonly transfers: Transfer[] = [];
  readonly #files = new Map<string, HostedFile>();
  readonly #server: Server;
  url = "";

  constructor() {
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  /** Listens on `address` (loopback by default; a real node's pods need this machine's own address). */
  async start(address = "127.0.0.1"): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, address, r));
    this.url = `http://${address}:${(this.#server.address() as {port: number}).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  /** Serves `body` as hf://org/repo/<name>. */
  host(name: string, file: HostedFile): void {
    this.#files.set(name, file);
  }

  /** Body bytes sent for a file, over every transfer. */
  bytesServed(name: string): number {
    return this.transfers.filter((t) => t.path === `/cdn/${name}`).reduce((n, t) => n + t.bytes, 0);
  }

  gets(name: string): Transfer[] {
    return this.transfers.filter((t) => t.path === `/cdn/${name}` && t.method === "GET");
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? "";
    const transfer: Transfer = {path: url, method: req.method ?? "", range: req.headers.range, at: Date.now(), bytes: 0, lastByteAt: 0};
    this.transfers.push(transfer);
    const hub = /^\/org\/repo\/resolve\/[^/]+\/(.+)$/.exec(url);
    const cdn = /^\/cdn\/(.+)$/.exec(url);
    const name = hub?.[1] ?? cdn?.[1];
    const file = name === undefined ? undefined : this.#files.get(name);
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    if (file.token && req.headers.authorization !== `Bearer ${file.token}`) {
      res.writeHead(req.headers.authorization ? 403 : 401).end();
      return;
    }
    if (hub) {
      res.writeHead(302, {location: `/cdn/${name}`, "x-linked-size": String(file.body.length), ...(file.linkedSha256 ? {"x-linked-etag": `"${file.linkedSha256}"`} : {})}).end();
      return;
    }
    if (req.method === "HEAD" && file.cdnRefusesHead) {
      res.writeHead(403).end();
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    const from = m ? Number(m[1]) : 0;
    const size = file.body.length;
    res.writeHead(m ? 206 : 200, {"content-type": "application/octet-stream", "content-length": String(size - from), "accept-ranges": "bytes", ...(m ? {"content-range": `bytes ${from}-${size - 1}/${size}`} : {})});
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    const first = this.gets(name!).length === 1 ? file.firstGet : undefined;
    const stopAt = first ? Math.floor(size * first.after) : size;
    const chunk = 16 * 1024;
    let at = from;
    while (at < stopAt && !res.destroyed) {
      const piece = file.body.subarray(at, Math.min(stopAt, at + chunk));
      if (!res.write(piece)) await new Promise((r) => res.once("drain", r));
      transfer.bytes += piece.length;
      transfer.lastByteAt = Date.now();
      at += piece.length;
      if (file.rate) await new Promise((r) => setTimeout(r, (1000 * piece.length) / file.rate!));
    }
    if (!first || at >= size) res.end();
    else if (first.then === "drop") res.destroy();
    // "stall": the connection stays open and silent; the client must give up on it.
  }
}
