import {DEFAULT_PORT, IMAGE_ENTRY} from "../../contract/index.js";
import {resolve} from "node:path";
import {readDockerfile} from "../helpers/dockerfile.js";
import {REPO_ROOT} from "../../dev/paths.js";

/**
 * Read statically here, both targets: the CPU one is also built with buildah and run on a
 * real node (test/e2e/real-node.test.ts); the CUDA one needs NVIDIA's base image from a
 * registry, so only its release workflow builds it.
 */
describe("Dockerfile.inference", () => {
  const instructions = readDockerfile(resolve(REPO_ROOT, "Dockerfile.inference"));
  const final = instructions.filter((i) => i.stage === "cuda");
  const cpu = instructions.filter((i) => i.stage === "cpu");
  const args = Object.fromEntries(instructions.filter((i) => i.keyword === "ARG").map((i) => i.args.split("=")));

  it("runs on a CUDA 13 runtime image (cuBLAS and cudart, which the prebuilt CUDA backend links)", () => {
    expect(args["CUDA_IMAGE"]).toMatch(/^nvidia\/cuda:13\.[\d.]+-runtime-/);
    expect(instructions.find((i) => i.keyword === "FROM" && i.stage === "cuda")?.args).toMatch(/^\$\{CUDA_IMAGE\}/);
  });

  it("builds the CUDA target by default (the last stage), and a CPU target on Debian without CUDA binaries", () => {
    expect(instructions.filter((i) => i.keyword === "FROM").at(-1)?.args).toMatch(/ AS cuda$/);
    expect(instructions.find((i) => i.keyword === "FROM" && i.stage === "cpu")?.args).toMatch(/^\$\{DEBIAN_IMAGE\}/);
    expect(args["DEBIAN_IMAGE"]).toMatch(/^debian:bookworm-slim$/);
    const cpuApp = instructions.filter((i) => i.stage === "app-cpu" && i.keyword === "RUN").map((i) => i.args).join("\n");
    expect(cpuApp).toMatch(/rm -rf node_modules\/@node-llama-cpp\/linux-x64-cuda\b/);
    expect(cpu.filter((i) => i.keyword === "COPY").every((i) => /--from=(app-cpu|node) /.test(i.args))).toBe(true);
    expect(cpu.find((i) => i.keyword === "ENV")?.args).toMatch(/GPU=off/);
  });

  it("uses Node 20 in every stage", () => {
    expect(args["NODE_IMAGE"]).toMatch(/^node:20[.\d]*-/);
  });

  it.each([["cuda"], ["cpu"]])("runs as a non-root numeric user in the %s target", (stage) => {
    const users = instructions.filter((i) => i.stage === stage && i.keyword === "USER");
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)!.args.split(":")[0]!;
    expect(user).toMatch(/^\d+$/);
    expect(Number(user)).toBeGreaterThan(0);
  });

  it("installs production dependencies only", () => {
    const runs = instructions.filter((i) => i.keyword === "RUN").map((i) => i.args).join("\n");
    expect(runs).toMatch(/npm prune --omit=dev/);
    expect(final.some((i) => i.keyword === "RUN" && /npm (ci|install)/.test(i.args))).toBe(false);
  });

  it.each([["cuda"], ["cpu"]])("the %s target exposes the contract port and starts the server's entry point", (stage) => {
    const target = instructions.filter((i) => i.stage === stage);
    expect(target.find((i) => i.keyword === "EXPOSE")?.args).toBe(String(DEFAULT_PORT));
    expect(JSON.parse(target.find((i) => i.keyword === "ENTRYPOINT")!.args)).toEqual(["node", IMAGE_ENTRY.server]);
  });
});
