import {spawn, spawnSync, type ChildProcess} from "node:child_process";
import {Redis} from "ioredis";
import {freePort} from "./ports.js";
import {sleep} from "./child.js";

/**
 * A real redis-server (Debian's, installed by .ci/run) on a free loopback port, with no
 * persistence. It can be killed and restarted on the same port to test outages.
 */
export class RedisProcess {
  #child: ChildProcess | undefined;
  readonly client: Redis;

  private constructor(readonly port: number) {
    this.client = new Redis({port, host: "127.0.0.1", lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100});
    this.client.on("error", () => {});
  }

  static async start(): Promise<RedisProcess> {
    if (spawnSync("redis-server", ["--version"]).status !== 0) {
      throw new Error("redis-server is not installed: run `bash .ci/run` once, or `apt-get install redis-server`");
    }
    const redis = new RedisProcess(await freePort());
    await redis.restart();
    await redis.client.connect();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts (again) on the same port and waits until it answers PING. */
  async restart(): Promise<void> {
    this.#child = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--enable-debug-command", "yes"], {stdio: "ignore"});
    const deadline = Date.now() + 10_000;
    for (;;) {
      const probe = new Redis({port: this.port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0});
      probe.on("error", () => {});
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        probe.disconnect();
        if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${this.port}`);
        await sleep(20);
      }
    }
  }

  /** Blocks the server for `seconds` (DEBUG SLEEP), from a separate connection: a slow Redis. */
  async stall(seconds: number): Promise<void> {
    const conn = new Redis({port: this.port, host: "127.0.0.1"});
    conn.on("error", () => {});
    void conn
      .call("DEBUG", "SLEEP", String(seconds))
      .catch(() => undefined)
      .finally(() => conn.disconnect());
    await sleep(50);
  }

  /** SIGKILL: an outage with no goodbye, as a crashed node or a network cut looks. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }

  async stop(): Promise<void> {
    this.client.disconnect();
    await this.kill();
  }
}
