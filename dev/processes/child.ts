import type {ChildProcess} from "node:child_process";
import {createInterface} from "node:readline";

/** One JSON log line of a Paddock program (see contract/log.ts); non-JSON lines come as `raw`. */
export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** Collects a child's JSON log lines from stdout (non-JSON lines kept as `raw`) and its stderr. */
export function collectOutput(child: ChildProcess, logs: LogLine[], onStderr: (text: string) => void): void {
  child.stderr!.on("data", (d: Buffer) => onStderr(d.toString()));
  createInterface({input: child.stdout!}).on("line", (line) => {
    try {
      logs.push(JSON.parse(line) as LogLine);
    } catch {
      logs.push({level: "raw", msg: line});
    }
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}
