import {anonHugeBytes, readHugePages, thpMode, useMmapFor, weightsMessage} from "../../inference-image/src/engine/huge-pages.js";

describe("model weights and transparent huge pages", () => {
  it("reads the file into memory on a CPU by default, and leaves the choice to node-llama-cpp with a GPU", () => {
    expect(useMmapFor("auto", false)).toBe(false);
    expect(useMmapFor("auto", "cuda")).toBe("auto");
    expect(useMmapFor("on", false)).toBe(true);
    expect(useMmapFor("off", "cuda")).toBe(false);
  });

  it("reads the kernel's THP mode and a process's huge-page bytes", () => {
    expect(thpMode("always [madvise] never\n")).toBe("madvise");
    expect(thpMode("[always] madvise never")).toBe("always");
    expect(thpMode("always madvise [never]")).toBe("never");
    expect(thpMode("")).toBeUndefined();
    const rollup = "Rss:              659524 kB\nAnonymous:        412000 kB\nAnonHugePages:    309248 kB\nShmemPmdMapped:        0 kB\n";
    expect(anonHugeBytes(rollup)).toBe(309248 * 1024);
    expect(anonHugeBytes("Rss: 1 kB\n")).toBeUndefined();
  });

  it("says nothing it cannot read (not Linux)", () => {
    expect(
      readHugePages(() => {
        throw new Error("ENOENT");
      })
    ).toEqual({mode: undefined, anonHugeBytes: undefined});
  });

  it("logs where the weights are, and warns a CPU server whose node has THP off", () => {
    const state = {mode: "madvise" as const, anonHugeBytes: 40 * 2 ** 20};
    expect(weightsMessage({mmap: false, gpu: false, state})).toEqual({level: "info", text: "model weights: read into memory; transparent huge pages: madvise, 40 MiB of the process in huge pages"});
    expect(weightsMessage({mmap: true, gpu: false, state: {mode: "never", anonHugeBytes: 0}}).level).toBe("info");
    const off = weightsMessage({mmap: false, gpu: false, state: {mode: "never", anonHugeBytes: 0}});
    expect(off.level).toBe("warn");
    expect(off.text).toMatch(/THP off .*up to 1\.4x slower/);
    expect(weightsMessage({mmap: false, gpu: "cuda", state: {mode: "never", anonHugeBytes: 0}}).level).toBe("info");
  });
});
