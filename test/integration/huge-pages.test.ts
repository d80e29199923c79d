import {mkdtempSync, readFileSync, rmSync, statSync} from "node:fs";
import {tmpdir} from "node:os";
import {join} from "node:path";
import {TINY_MODEL} from "../../dev/paths.js";
import {SHAPES, writeSyntheticModel} from "../../dev/models/synthetic.js";
import {ServerProcess} from "../../dev/processes/server.js";
import {anonHugeBytes, readHugePages} from "../../inference-image/src/engine/huge-pages.js";

/**
 * On a CPU the server reads the model into its own memory, and Paddock's llama.cpp build
 * (inference-image/patches/*-llama.cpp-huge-pages.patch) puts it in transparent huge pages:
 * decoding, which reads every weight once per token, misses the TLB every 2 MiB instead of
 * every 4 KiB. What an operator can see: the process's AnonHugePages (in
 * /proc/<pid>/smaps_rollup) holds the weights, the start-up log says so, and the answers are
 * those of the same model mapped from its file (MODEL_MMAP=on). A 38 MB synthetic 20M f16
 * model, since the tiny model's weights are under one huge page. The speed is in the
 * benchmarks (bench:data-plane), not here. Needs a kernel with THP in "madvise" or "always"
 * mode (this VM and CI: madvise); skipped where THP is off.
 */
const thp = readHugePages().mode;
const maybe = thp === "madvise" || thp === "always" ? describe : describe.skip;

maybe(`model weights in transparent huge pages (THP ${thp ?? "unavailable"})`, () => {
  const dir = mkdtempSync(join(tmpdir(), "paddock-huge-pages-"));
  const model = join(dir, "synthetic-20m-f16.gguf");
  let servers: Record<"auto" | "on", ServerProcess>;
  beforeAll(async () => {
    writeSyntheticModel({shape: SHAPES["20m"]!, type: "f16", tokenizerFrom: TINY_MODEL, out: model, seed: 1, textOnly: true});
    const start = (mode: "auto" | "on") => ServerProcess.start({MODEL_PATH: model, MODEL_NAME: "synthetic-20m", MODEL_MMAP: mode, PARALLEL_SLOTS: "1", CONTEXT_SIZE: "256", CACHE_MODE: "off"});
    const [auto, on] = await Promise.all([start("auto"), start("on")]);
    servers = {auto, on};
  });
  afterAll(async () => {
    await Promise.all(Object.values(servers ?? {}).map((s) => s.stop()));
    rmSync(dir, {recursive: true, force: true});
  });

  const hugeBytes = (server: ServerProcess) => anonHugeBytes(readFileSync(`/proc/${server.child.pid}/smaps_rollup`, "utf8")) ?? 0;
  const complete = async (server: ServerProcess) => {
    const res = await fetch(`${server.url}/v1/completions`, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify({model: "synthetic-20m", prompt: "Once upon a time", max_tokens: 16, temperature: 0})});
    expect(res.status).toBe(200);
    return ((await res.json()) as {choices: Array<{text: string}>}).choices[0]!.text;
  };

  it("reads the weights into huge pages by default, and maps them with MODEL_MMAP=on", async () => {
    const fileBytes = statSync(model).size;
    // Nearly all of the file is weights (a 512-token vocabulary); the KV cache of 256 tokens is
    // 3 MiB. Measured: all of it in huge pages. At least half, since a fragmented machine's
    // compaction can leave some in 4 KiB pages; the build without the patch puts none there.
    expect(hugeBytes(servers.auto)).toBeGreaterThan(0.5 * fileBytes);
    expect(hugeBytes(servers.on)).toBeLessThan(0.25 * fileBytes);
    const line = servers.auto.logs.find((l) => String(l.msg).startsWith("model weights:"));
    expect(line?.msg).toMatch(new RegExp(`^model weights: read into memory; transparent huge pages: ${thp}, \\d+ MiB of the process in huge pages$`));
    expect(servers.on.logs.find((l) => String(l.msg).startsWith("model weights:"))?.msg).toMatch(/^model weights: mapped from the file;/);
  });

  it("answers as the same model mapped from its file", async () => {
    const [inMemory, mapped] = [await complete(servers.auto), await complete(servers.on)];
    expect(inMemory.length).toBeGreaterThan(0);
    expect(inMemory).toBe(mapped);
  });
});
