import {spawn, type ChildProcess} from "node:child_process";
import {requireBuilt, SERVER_ENTRY, TINY_MODEL} from "../paths.js";
import {collectOutput, sleep, type LogLine} from "./child.js";

export {collectOutput, sleep, type LogLine} from "./child.js";

/**
 * The real inference server as a child process on a free loopback port (PORT=0; the port
 * is read from its "listening" log line). No mocks: the tiny model, real sockets.
 */
export class ServerProcess {
  readonly logs: LogLine[] = [];
  stderr = "";
  url = "";
  readonly #exit: Promise<{code: number | null; signal: NodeJS.Signals | null}>;

  private constructor(readonly child: ChildProcess) {
    this.#exit = new Promise((resolve) => child.once("exit", (code, signal) => resolve({code, signal})));
    collectOutput(child, this.logs, (text) => (this.stderr += text));
  }

  /** `entry`: another build's server (bench:ab compares two); defaults to this checkout's. */
  static async start(env: Record<string, string> = {}, options: {waitReady?: boolean; entry?: string} = {}): Promise<ServerProcess> {
    requireBuilt();
    const child = spawn(process.execPath, [options.entry ?? SERVER_ENTRY], {
      env: {
        PATH: process.env["PATH"] ?? "",
        HOME: process.env["HOME"] ?? "/tmp",
        MODEL_PATH: TINY_MODEL,
        HOST: "127.0.0.1",
        PORT: "0",
        THREADS: "1",
        ...env
      },
      stdio: ["ignore", "pipe", "pipe"]
    });
    const server = new ServerProcess(child);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const listening = server.logs.find((l) => l.msg === "listening");
      if (listening) {
        server.url = `http://127.0.0.1:${String(listening["port"])}`;
        break;
      }
      if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before listening: ${server.stderr}`);
      if (Date.now() > deadline) throw new Error(`server did not listen within 30 s: ${server.stderr}`);
      await sleep(10);
    }
    if (options.waitReady ?? true) await server.waitReady();
    return server;
  }

  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const res = await fetch(`${this.url}/readyz`).catch(() => undefined);
      if (res?.status === 200) return;
      await sleep(25);
    }
    throw new Error(`server not ready after ${timeoutMs} ms; stderr: ${this.stderr}`);
  }

  /** The log lines of finished inference requests. */
  requestLogs(): LogLine[] {
    return this.logs.filter((l) => l.msg === "request");
  }

  /** Waits for a log line (stdout arrives a moment after the HTTP response). */
  async waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 5_000): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.logs.find(predicate);
      if (line) return line;
      if (Date.now() > deadline) throw new Error(`no matching log line within ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  async metrics(): Promise<string> {
    return (await fetch(`${this.url}/metrics`)).text();
  }

  exited(): Promise<{code: number | null; signal: NodeJS.Signals | null}> {
    return this.#exit;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await this.#exit;
    clearTimeout(timer);
  }
}

/** Runs the server with a bad environment and returns how it exited. */
export function runToExit(env: Record<string, string>): Promise<{code: number | null; stderr: string}> {
  requireBuilt();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [SERVER_ENTRY], {env: {PATH: process.env["PATH"] ?? "", ...env}, stdio: ["ignore", "pipe", "pipe"]});
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("exit", (code) => resolve({code, stderr}));
  });
}
