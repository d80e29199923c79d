import {execFile} from "node:child_process";
import {resolve} from "node:path";
import {promisify} from "node:util";
import {REPO_ROOT, TINY_MODEL} from "../../dev/paths.js";

/**
 * Token counts straight from node-llama-cpp's tokenizer, in a separate process (the native
 * addon stays out of jest's VM), as an independent check of the server's `usage`.
 */
export async function countTokens(texts: string[]): Promise<number[]> {
  return JSON.parse(await run(texts, "count")) as number[];
}

/** The token ids of each text (no BOS), from the same tokenizer. */
export async function tokenIds(texts: string[]): Promise<number[][]> {
  return JSON.parse(await run(texts, "ids")) as number[][];
}

async function run(texts: string[], mode: "count" | "ids"): Promise<string> {
  const script = resolve(REPO_ROOT, "test/helpers/tokenize-cli.mjs");
  const {stdout} = await promisify(execFile)(process.execPath, [script, TINY_MODEL, JSON.stringify(texts), mode], {
    cwd: REPO_ROOT,
    // Not jest's NODE_OPTIONS: --experimental-vm-modules breaks node-llama-cpp's binary self-test.
    env: {PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp"}
  });
  return stdout;
}

/** Greedy logprobs after [BOS, ...ids] from node-llama-cpp's public API (raw-logprobs-cli.mjs): an oracle for the server's. */
export async function oracleLogprobs(ids: readonly number[], tokens: number, top: number): Promise<Array<{token: string; logprob: number; top: Array<{token: string; logprob: number}>}>> {
  const script = resolve(REPO_ROOT, "test/helpers/raw-logprobs-cli.mjs");
  const {stdout} = await promisify(execFile)(process.execPath, [script, TINY_MODEL, JSON.stringify(ids), String(tokens), String(top)], {cwd: REPO_ROOT, env: {PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp"}});
  return JSON.parse(stdout) as Awaited<ReturnType<typeof oracleLogprobs>>;
}
