import {DEFAULT_PORT, IMAGE_ENTRY} from "../../contract/index.js";
import {resolve} from "node:path";
import {readDockerfile} from "../helpers/dockerfile.js";
import {REPO_ROOT} from "../../dev/paths.js";

/**
 * No Docker engine on this machine: the image is checked by reading its Dockerfile here,
 * and by building and starting exactly what it copies in test/integration/images.test.ts.
 */
describe("Dockerfile.inference", () => {
  const instructions = readDockerfile(resolve(REPO_ROOT, "Dockerfile.inference"));
  const final = instructions.filter((i) => i.stage === "runtime");
  const args = Object.fromEntries(instructions.filter((i) => i.keyword === "ARG").map((i) => i.args.split("=")));

  it("runs on a CUDA 13 runtime image (cuBLAS and cudart, which the prebuilt CUDA backend links)", () => {
    expect(args["CUDA_IMAGE"]).toMatch(/^nvidia\/cuda:13\.[\d.]+-runtime-/);
    expect(instructions.find((i) => i.keyword === "FROM" && i.stage === "runtime")?.args).toMatch(/^\$\{CUDA_IMAGE\}/);
  });

  it("uses Node 20 in every stage", () => {
    expect(args["NODE_IMAGE"]).toMatch(/^node:20[.\d]*-/);
  });

  it("runs as a non-root numeric user in the final stage", () => {
    const users = final.filter((i) => i.keyword === "USER");
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

  it("exposes the contract port and starts the server's entry point", () => {
    expect(final.find((i) => i.keyword === "EXPOSE")?.args).toBe(String(DEFAULT_PORT));
    expect(JSON.parse(final.find((i) => i.keyword === "ENTRYPOINT")!.args)).toEqual(["node", IMAGE_ENTRY.server]);
  });
});
