import {ModelSizer} from "../../operator/src/controller/model-size.js";
import {ModelHost} from "../helpers/model-host.js";

/** How the operator sizes a shared model claim: HEAD requests to a local host playing the hub. */
describe("ModelSizer", () => {
  const host = new ModelHost();
  beforeAll(async () => {
    await host.start();
    host.host("one.gguf", {body: Buffer.alloc(1000)});
    host.host("split-00001-of-00002.gguf", {body: Buffer.alloc(700)});
    host.host("split-00002-of-00002.gguf", {body: Buffer.alloc(300)});
    host.host("gated.gguf", {body: Buffer.alloc(10), token: "t"});
    host.host("signed.gguf", {body: Buffer.alloc(1234), cdnRefusesHead: true});
  });
  afterAll(() => host.stop());

  it("asks the host for the length with HEAD, following the hub's redirect, and sums a sharded model's parts", async () => {
    const sizer = new ModelSizer(host.url);
    expect(await sizer.size("hf://org/repo/one.gguf")).toEqual({bytes: 1000});
    expect(await sizer.size("hf://org/repo/split-00001-of-00002.gguf@main")).toEqual({bytes: 1000});
    expect(host.transfers.filter((t) => t.method !== "HEAD")).toEqual([]);
    // Remembered: no second request.
    const before = host.transfers.length;
    expect(await sizer.size("hf://org/repo/one.gguf")).toEqual({bytes: 1000});
    expect(host.transfers.length).toBe(before);
  });

  it("reads the length from the hub's redirect (X-Linked-Size), never asking a CDN that refuses HEAD", async () => {
    const sizer = new ModelSizer(host.url);
    expect(await sizer.size("hf://org/repo/signed.gguf")).toEqual({bytes: 1234});
    expect(host.transfers.filter((t) => t.path.startsWith("/cdn/signed"))).toEqual([]);
  });

  it("says when the host will not tell (a gated model) and names the field to set, asking again only after 30 s", async () => {
    let now = 0;
    const sizer = new ModelSizer(host.url, fetch, () => now);
    const refused = await sizer.size("hf://org/repo/gated.gguf");
    expect(refused).toEqual({error: expect.stringMatching(/HTTP 401 \(the operator asks anonymously\); set spec\.model\.cache\.size$/)});
    const before = host.transfers.length;
    now = 29_000;
    await sizer.size("hf://org/repo/gated.gguf");
    expect(host.transfers.length).toBe(before);
    now = 31_000;
    await sizer.size("hf://org/repo/gated.gguf");
    expect(host.transfers.length).toBe(before + 1);
  });
});
