import {spawn, type ChildProcess} from "node:child_process";
import {OPERATOR_ENTRY} from "../paths.js";
import {collectOutput, sleep, type LogLine} from "./child.js";

export {OPERATOR_ENTRY} from "../paths.js";

/** The operator as a real process (what `npm run operator` runs), against a test cluster. */
export class OperatorProcess {
  readonly logs: LogLine[] = [];
  stderr = "";
  readonly exited: Promise<number | null>;
  /** When it was started (ms since the epoch). */
  readonly startedAt = Date.now();

  private constructor(readonly child: ChildProcess) {
    this.exited = new Promise((r) => child.once("exit", (code) => r(code)));
    collectOutput(child, this.logs, (text) => (this.stderr += text));
  }

  static start(kubeconfig: string, args: string[] = [], env: Record<string, string> = {}): OperatorProcess {
    const child = spawn(process.execPath, [OPERATOR_ENTRY, "--health-port=0", ...args], {
      env: {PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp", KUBECONFIG: kubeconfig, ...env},
      stdio: ["ignore", "pipe", "pipe"]
    });
    return new OperatorProcess(child);
  }

  get isLeader(): boolean {
    return this.logs.some((l) => l.msg === "leading: starting controllers");
  }

  async waitFor(msg: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.logs.some((l) => l.msg === msg)) {
      if (this.child.exitCode !== null) throw new Error(`operator exited (${this.child.exitCode}): ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`operator did not log '${msg}' within ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  /** SIGKILL: a crash, with no chance to release the lease or finish a reconcile. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.child.kill("SIGTERM");
    return this.exited;
  }
}
