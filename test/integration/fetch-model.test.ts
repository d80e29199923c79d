import {createHash} from "node:crypto";
import {createServer, type Server} from "node:http";
import {existsSync, mkdtempSync, readFileSync, writeFileSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {fetchModel, ModelDownloadError} from "../../inference-image/src/fetch-model.js";
import {TINY_MODEL} from "../../dev/paths.js";

/** The init container's download, against a real local HTTP server serving the tiny model. */
describe("fetch-model", () => {
  const model = readFileSync(TINY_MODEL);
  const sha = createHash("sha256").update(model).digest("hex");
  let server: Server;
  let base: string;
  let hits = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      hits++;
      if (req.url === "/model.gguf") res.end(model);
      else if (req.url === "/truncated.gguf") {
        res.writeHead(200, {"Content-Length": String(model.length)});
        res.write(model.subarray(0, 1000));
        res.destroy();
      } else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as {port: number}).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const target = () => join(mkdtempSync(join(tmpdir(), "paddock-model-")), "model.gguf");

  it("downloads and verifies the model, then keeps a verified copy without downloading again", async () => {
    const path = target();
    expect(await fetchModel(`${base}/model.gguf`, path, sha)).toBe("downloaded");
    expect(createHash("sha256").update(readFileSync(path)).digest("hex")).toBe(sha);
    const before = hits;
    expect(await fetchModel(`${base}/model.gguf`, path, sha)).toBe("present");
    expect(hits).toBe(before);
  });

  it("refuses a file whose sha256 does not match and leaves nothing behind", async () => {
    const path = target();
    const wrong = "0".repeat(64);
    await expect(fetchModel(`${base}/model.gguf`, path, wrong)).rejects.toThrow(/sha256 mismatch/);
    expect(existsSync(path)).toBe(false);
    expect(existsSync(`${path}.part`)).toBe(false);
  });

  it("replaces a present file that fails verification", async () => {
    const path = target();
    writeFileSync(path, "corrupt");
    expect(await fetchModel(`${base}/model.gguf`, path, sha)).toBe("downloaded");
  });

  it.each([
    ["an HTTP error", "/missing.gguf", /HTTP 404/],
    ["a cut connection", "/truncated.gguf", /downloading .* failed/]
  ])("reports %s clearly", async (_what, url, message) => {
    const error = await fetchModel(`${base}${url}`, target(), sha).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelDownloadError);
    expect(String((error as Error).message)).toMatch(message);
  });
});
