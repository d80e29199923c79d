import {execFile} from "node:child_process";
import {resolve} from "node:path";
import {promisify} from "node:util";
import {REPO_ROOT, TINY_MODEL} from "../../dev/paths.js";

/**
 * Paddock's node-llama-cpp patch (inference-image/patches/*-batch-order.patch): llama.cpp,
 * with one KV stream per sequence, keeps the tokens of several sequences in one ubatch only
 * while each sequence id is the previous one plus one, so a batch in any other order is
 * decoded as several passes over the weights (4 slots on the 110M model: 39-48 ms a step
 * instead of 28). The batches are recorded in a separate process (the native addon stays out
 * of jest's VM) by watching the addon's batch calls; the generations run for real.
 */
describe("node-llama-cpp's batches, as Paddock installs it", () => {
  it("lists the sequences generating together in id order, even when they queued last slot first", async () => {
    const script = resolve(REPO_ROOT, "test/helpers/batch-order-cli.mjs");
    const {stdout} = await promisify(execFile)(process.execPath, [script, TINY_MODEL], {cwd: REPO_ROOT, env: {PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp"}});
    const batches = JSON.parse(stdout) as number[][];
    // The four prompts went into one batch, then the sequences' tokens stepped together.
    expect(batches[0]).toEqual([0, 1, 2, 3]);
    expect(batches.filter((ids) => ids.length > 1).length).toBeGreaterThan(5);
    for (const ids of batches) expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });
});
