import {readFileSync} from "node:fs";

export interface Instruction {
  readonly stage: string;
  readonly keyword: string;
  readonly args: string;
}

/**
 * A small Dockerfile reader for static checks (no Docker engine here): joins `\` line
 * continuations, drops comments and names each instruction's build stage.
 */
export function readDockerfile(path: string): Instruction[] {
  const logical = readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => !/^\s*#/.test(l))
    .join("\n")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  const out: Instruction[] = [];
  let stage = "";
  for (const line of logical) {
    const [, keyword = "", args = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const upper = keyword.toUpperCase();
    if (upper === "FROM") stage = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? args;
    out.push({stage, keyword: upper, args});
  }
  return out;
}
