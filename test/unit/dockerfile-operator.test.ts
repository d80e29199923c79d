import {existsSync} from "node:fs";
import {resolve} from "node:path";
import {readDockerfile} from "../helpers/dockerfile.js";
import {REPO_ROOT} from "../helpers/paths.js";

/** No Docker engine on this machine: the image is checked by reading its Dockerfile. */
describe("Dockerfile.operator", () => {
  const instructions = readDockerfile(resolve(REPO_ROOT, "Dockerfile.operator"));
  const final = instructions.filter((i) => i.stage === "runtime");
  const build = instructions.filter((i) => i.stage === "build");

  it("is multi-stage and ships production dependencies only, without llama.cpp", () => {
    expect(instructions.filter((i) => i.keyword === "FROM").length).toBeGreaterThanOrEqual(2);
    const runs = build.filter((i) => i.keyword === "RUN").map((i) => i.args).join("\n");
    expect(runs).toMatch(/npm prune --omit=dev/);
    expect(runs).toMatch(/rm -rf node_modules\/node-llama-cpp/);
    expect(final.some((i) => i.keyword === "RUN" && /npm (ci|install)/.test(i.args))).toBe(false);
  });

  it("copies every source the operator imports into the build", () => {
    const copied = build.filter((i) => i.keyword === "COPY").flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    for (const needed of ["operator/", "inference-image/src/contract.ts", "inference-image/src/logger.ts"]) expect(copied).toContain(needed);
  });

  it("runs as a non-root numeric user and starts the built operator", () => {
    const user = final.filter((i) => i.keyword === "USER").at(-1)!.args.split(":")[0]!;
    expect(Number(user)).toBeGreaterThan(0);
    const entrypoint = JSON.parse(final.find((i) => i.keyword === "ENTRYPOINT")!.args) as string[];
    expect(entrypoint[0]).toBe("node");
    expect(existsSync(resolve(REPO_ROOT, entrypoint[1]!))).toBe(true);
  });
});
