import {createHash} from "node:crypto";
import {createServer, type IncomingMessage, type Server, type ServerResponse} from "node:http";
import {existsSync, mkdtempSync, readFileSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {fetchModel, ModelDownloadError, type FetchOptions} from "../../inference-image/src/model/fetch-model.js";
import {TINY_MODEL} from "../../dev/paths.js";

/**
 * The model download (init container, later the download Job) against a real local HTTP
 * server playing the model host: Range requests, dropped and stalled connections, a wrong
 * digest, 401 without a token, and the hub's redirect with the LFS digest in its headers.
 */
describe("fetch-model", () => {
  const model = readFileSync(TINY_MODEL);
  const sha = createHash("sha256").update(model).digest("hex");
  let server: Server;
  let base: string;
  // A sharded model as llama.cpp's gguf-split names its parts (the bytes are just thirds here).
  const third = Math.ceil(model.length / 3);
  const parts = [0, 1, 2].map((i) => model.subarray(i * third, (i + 1) * third));
  const seen: Array<{url: string; method: string; range: string | undefined; auth: string | undefined}> = [];
  const attempts = new Map<string, number>();

  /** Serves the model from `from` (a Range request's start), optionally cut or stalled after `limit` bytes. */
  const serve = (req: IncomingMessage, res: ServerResponse, behaviour: "ok" | "drop" | "stall" = "ok") => {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    const from = m ? Number(m[1]) : 0;
    const headers = {"content-type": "application/octet-stream", "content-length": String(model.length - from), "accept-ranges": "bytes", ...(m ? {"content-range": `bytes ${from}-${model.length - 1}/${model.length}`} : {})};
    res.writeHead(m ? 206 : 200, headers);
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    const body = model.subarray(from);
    if (behaviour === "ok") {
      res.end(body);
      return;
    }
    res.write(body.subarray(0, 100_000));
    if (behaviour === "drop") setTimeout(() => res.destroy(), 20);
    // "stall": keep the connection open, send nothing more (the client must give up on it)
  };

  beforeAll(async () => {
    server = createServer((req, res): void => {
      const url = req.url ?? "";
      seen.push({url, method: req.method ?? "", range: req.headers.range, auth: req.headers.authorization});
      const n = (attempts.get(url) ?? 0) + 1;
      attempts.set(url, n);
      const hub = /^\/org\/repo\/resolve\/(main|v2)\/(good|bad)\.gguf$/.exec(url);
      const shard = /^\/split-(\d{5})-of-00003\.gguf$/.exec(url);
      if (url === "/model.gguf" || url === "/cdn/blob.gguf") serve(req, res);
      else if (url === "/drop-once.gguf") serve(req, res, n === 1 ? "drop" : "ok");
      else if (url === "/stall-once.gguf") serve(req, res, n === 1 ? "stall" : "ok");
      else if (url === "/always-drop.gguf") serve(req, res, "drop");
      else if (url === "/private.gguf") {
        if (req.headers.authorization === "Bearer s3cret") serve(req, res);
        else res.writeHead(401).end();
      } else if (hub) {
        // The hub: the resolve URL redirects to a CDN, with the LFS file's sha256 as the linked ETag.
        res.writeHead(302, {location: "/cdn/blob.gguf", "x-linked-etag": `"${hub[2] === "good" ? sha : "f".repeat(64)}"`, "x-repo-commit": "abc"}).end();
      } else if (shard && Number(shard[1]) >= 1 && Number(shard[1]) <= 3 && !(shard[1] === "00003" && attempts.get("missing-third"))) {
        const i = Number(shard[1]) - 1;
        res.writeHead(200, {"content-length": String(parts[i]!.length)}).end(parts[i]);
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as {port: number}).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const target = () => join(mkdtempSync(join(tmpdir(), "paddock-model-")), "model.gguf");
  const quick: FetchOptions = {backoff: () => 10, stallTimeoutMs: 500};
  const rangesFor = (url: string) => seen.filter((s) => s.url === url && s.method === "GET").map((s) => s.range);
  const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as ModelDownloadError);

  it("downloads and verifies the model (into a folder it creates, as the shared cache's <key>/), then keeps a verified copy without downloading again", async () => {
    const path = join(target(), "..", "d337f562f680575e", "model.gguf");
    expect(await fetchModel(`${base}/model.gguf`, path, {...quick, sha256: sha})).toBe("downloaded");
    expect(createHash("sha256").update(readFileSync(path)).digest("hex")).toBe(sha);
    const before = seen.length;
    expect(await fetchModel(`${base}/model.gguf`, path, {...quick, sha256: sha})).toBe("present");
    expect(seen.length).toBe(before);
  });

  it("resumes with a Range request after the connection drops, and after a stall", async () => {
    for (const url of ["/drop-once.gguf", "/stall-once.gguf"]) {
      const path = target();
      expect(await fetchModel(`${base}${url}`, path, {...quick, sha256: sha})).toBe("downloaded");
      expect(createHash("sha256").update(readFileSync(path)).digest("hex")).toBe(sha);
      // The second request resumes where the first stopped: after the bytes that arrived
      // (up to the 100,000 sent; a reset can lose some in flight on a busy machine).
      const [firstRange, resumed, ...more] = rangesFor(url);
      expect([firstRange, more]).toEqual([undefined, []]);
      const from = Number(/^bytes=(\d+)-$/.exec(resumed ?? "")?.[1]);
      expect(from).toBeGreaterThan(0);
      expect(from).toBeLessThanOrEqual(100_000);
    }
  });

  it("resumes a .part left by an earlier attempt (a persistent volume)", async () => {
    const path = target();
    writeFileSync(`${path}.part`, model.subarray(0, 4096));
    const before = rangesFor("/model.gguf").length;
    expect(await fetchModel(`${base}/model.gguf`, path, {...quick, sha256: sha})).toBe("downloaded");
    expect(rangesFor("/model.gguf").slice(before)).toEqual(["bytes=4096-"]);
    expect(createHash("sha256").update(readFileSync(path)).digest("hex")).toBe(sha);
  });

  it("gives up after its retries, saying how many and why, and keeps what it got for the next attempt to resume", async () => {
    const path = target();
    const error = await failure(fetchModel(`${base}/always-drop.gguf`, path, {...quick, maxRetries: 2}));
    expect(error).toMatchObject({reason: "TooManyRetries", message: expect.stringMatching(/^downloading .*always-drop\.gguf failed after 2 retries: \S/)});
    // On the shared cache's volume, the Job's next pod resumes from here; the file itself is never there unverified.
    expect(existsSync(path)).toBe(false);
    const kept = readFileSync(`${path}.part`);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.equals(model.subarray(0, kept.length))).toBe(true);
  });

  it("refuses a file whose sha256 does not match (expected vs got) and a present file that fails verification is replaced", async () => {
    const path = target();
    const error = await failure(fetchModel(`${base}/model.gguf`, path, {...quick, sha256: "0".repeat(64)}));
    expect(error).toMatchObject({reason: "DigestMismatch", message: expect.stringContaining(`expected ${"0".repeat(64)}, got ${sha}`)});
    expect(existsSync(path) || existsSync(`${path}.part`)).toBe(false);
    writeFileSync(path, "corrupt");
    expect(await fetchModel(`${base}/model.gguf`, path, {...quick, sha256: sha})).toBe("downloaded");
  });

  it("says a token is missing (401), and sends the one it has", async () => {
    const error = await failure(fetchModel(`${base}/private.gguf`, target(), quick));
    expect(error).toMatchObject({reason: "Unauthorized", message: expect.stringContaining("HTTP 401: a token is needed (spec.model.tokenSecretRef)")});
    expect(await fetchModel(`${base}/private.gguf`, target(), {...quick, token: "s3cret"})).toBe("downloaded");
  });

  it("resolves hf:// through the hub's redirect, verifying against its LFS digest", async () => {
    expect(await fetchModel("hf://org/repo/good.gguf", target(), {...quick, hfEndpoint: base})).toBe("downloaded");
    expect(seen.some((s) => s.url === "/org/repo/resolve/main/good.gguf" && s.method === "HEAD")).toBe(true);
    expect(await fetchModel("hf://org/repo/good.gguf@v2", target(), {...quick, hfEndpoint: base})).toBe("downloaded");
    const wrong = await failure(fetchModel("hf://org/repo/bad.gguf", target(), {...quick, hfEndpoint: base}));
    expect(wrong).toMatchObject({reason: "DigestMismatch"});
    expect(await failure(fetchModel("hf://org/only-two.gguf", target(), quick))).toMatchObject({reason: "InvalidSource"});
  });

  it("fails at once when the volume cannot hold the file, naming both sizes", async () => {
    // The free space is injected: filling this machine's disk to prove it is not an option.
    const path = target();
    const error = await failure(fetchModel(`${base}/model.gguf`, path, {...quick, freeBytes: () => 1000}));
    expect(error).toMatchObject({reason: "InsufficientStorage", message: `not enough space for ${base}/model.gguf: it needs ${model.length} more bytes, the volume has 1000 free`});
    expect(existsSync(`${path}.part`)).toBe(false);
  });

  it("a model folder it cannot create is WriteFailed, never an HTTP error (found on a real node: a root-owned hostPath volume)", async () => {
    // Tests run as root, whom permissions do not stop: a file where the folder goes does.
    const dir = mkdtempSync(join(tmpdir(), "paddock-model-"));
    writeFileSync(join(dir, "key"), "not a folder");
    const error = await failure(fetchModel(`${base}/model.gguf`, join(dir, "key", "model.gguf"), quick));
    expect(error).toMatchObject({reason: "WriteFailed"});
    expect(error!.message).toMatch(/^cannot create .*\/key: EEXIST/);
  });

  it("resumes through the hub again when its signed CDN URL expired, and never sends the token to the CDN (403 was final before)", async () => {
    // The hub and a CDN on another host: each resolve signs a new URL, and only the newest
    // signature works (the older one "expired"); the first transfer drops halfway.
    const cdnSeen: Array<{sig: string; auth: string | undefined}> = [];
    let signature = 0;
    let gets = 0;
    const cdn = createServer((req, res) => {
      const sig = new URL(req.url ?? "", "http://x").searchParams.get("sig") ?? "";
      cdnSeen.push({sig, auth: req.headers.authorization});
      if (sig !== String(signature)) return void res.writeHead(403).end("expired");
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
      const from = m ? Number(m[1]) : 0;
      res.writeHead(m ? 206 : 200, {"content-length": String(model.length - from), ...(m ? {"content-range": `bytes ${from}-${model.length - 1}/${model.length}`} : {})});
      if (req.method === "HEAD") return void res.end();
      if (++gets === 1) {
        res.write(model.subarray(from, from + 100_000));
        // The connection drops, and the signature expires before the resume.
        setTimeout(() => {
          signature++;
          res.destroy();
        }, 20);
      } else res.end(model.subarray(from));
    });
    await new Promise<void>((r) => cdn.listen(0, "127.0.0.1", r));
    const cdnUrl = `http://localhost:${(cdn.address() as {port: number}).port}`;
    const hubSeen: Array<string | undefined> = [];
    const hub = createServer((req, res) => {
      hubSeen.push(req.headers.authorization);
      if (req.headers.authorization !== "Bearer s3cret") return void res.writeHead(401).end();
      res.writeHead(302, {location: `${cdnUrl}/blob?sig=${signature}`, "x-linked-etag": `"${sha}"`}).end();
    });
    await new Promise<void>((r) => hub.listen(0, "127.0.0.1", r));
    try {
      const path = target();
      const hubUrl = `http://127.0.0.1:${(hub.address() as {port: number}).port}`;
      expect(await fetchModel("hf://org/repo/signed.gguf", path, {...quick, token: "s3cret", hfEndpoint: hubUrl})).toBe("downloaded");
      expect(createHash("sha256").update(readFileSync(path)).digest("hex")).toBe(sha);
      // The resume asked the hub for a new URL: the HEAD, the first GET and the resume.
      expect(hubSeen).toEqual(["Bearer s3cret", "Bearer s3cret", "Bearer s3cret"]);
      expect(cdnSeen.every((c) => c.auth === undefined)).toBe(true);
      // And a token the hub itself refuses is still Unauthorized, at once.
      const refused = await failure(fetchModel("hf://org/repo/signed.gguf", target(), {...quick, token: "wrong", hfEndpoint: hubUrl}));
      expect(refused).toMatchObject({reason: "Unauthorized"});
    } finally {
      for (const s of [hub, cdn]) {
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
    }
  });

  it("downloads every part of a sharded GGUF next to the first, verifying the first against the spec's digest", async () => {
    const dir = mkdtempSync(join(tmpdir(), "paddock-model-"));
    const first = join(dir, "split-00001-of-00003.gguf");
    const firstSha = createHash("sha256").update(parts[0]!).digest("hex");
    expect(await fetchModel(`${base}/split-00001-of-00003.gguf`, first, {...quick, sha256: firstSha})).toBe("downloaded");
    for (const [i, part] of parts.entries()) expect(readFileSync(join(dir, `split-0000${i + 1}-of-00003.gguf`)).equals(part)).toBe(true);
    expect(await fetchModel(`${base}/split-00001-of-00003.gguf`, first, {...quick, sha256: firstSha})).toBe("present");
    attempts.set("missing-third", 1);
    const other = join(mkdtempSync(join(tmpdir(), "paddock-model-")), "split-00001-of-00003.gguf");
    const error = await failure(fetchModel(`${base}/split-00001-of-00003.gguf`, other, quick));
    expect(error).toMatchObject({reason: "HttpError", message: expect.stringContaining("split-00003-of-00003.gguf: HTTP 404")});
    attempts.delete("missing-third");
  });

  it("reports an HTTP error at once", async () => {
    const error = await failure(fetchModel(`${base}/missing.gguf`, target(), quick));
    expect(error).toMatchObject({reason: "HttpError", message: expect.stringContaining("HTTP 404")});
  });
});
