import type {Response} from "express";
import type {ApiError} from "../core/errors.js";

/**
 * Events closer together than this share one socket write. A write per token was a tenth of
 * the server's main-thread time under streaming load on the tiny model (`npm run
 * bench:profile`); tokens slower than one per 5 ms (any model worth serving on a GPU, most
 * on a CPU) still go out one by one, at once, and no event waits longer than this.
 */
export const COALESCE_MS = 5;

/**
 * Server-sent events in OpenAI's framing: `data: <json>` events and a final `data: [DONE]`.
 * Once the stream has started its status is 200, so an error becomes a last error event.
 * An event goes out at once unless another went out less than COALESCE_MS ago; then it
 * waits for the rest of that window with any that follow, and they leave in one write.
 */
export class SseStream {
  #open = false;
  #pending = "";
  #timer: NodeJS.Timeout | undefined;
  #lastWrite = -Infinity;

  constructor(
    private readonly res: Response,
    private readonly now: () => number = performance.now.bind(performance)
  ) {}

  get open(): boolean {
    return this.#open;
  }

  start(headers: Record<string, string> = {}): void {
    if (this.#open) return;
    this.#open = true;
    this.res.status(200);
    this.res.set({
      ...headers,
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-cache",
      // Reverse proxies (nginx) otherwise buffer the whole stream.
      "X-Accel-Buffering": "no"
    });
    this.res.flushHeaders();
  }

  send(data: unknown): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    this.#pending += `data: ${JSON.stringify(data)}\n\n`;
    if (this.#timer) return;
    const wait = this.#lastWrite + COALESCE_MS - this.now();
    if (wait <= 0) this.#flush();
    else this.#timer = setTimeout(() => this.#flush(), wait);
  }

  end(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.res.writableEnded || this.res.destroyed) return;
    const rest = this.#pending;
    this.#pending = "";
    this.res.end(`${rest}data: [DONE]\n\n`);
  }

  fail(error: ApiError): void {
    this.send(error.toBody());
    this.end();
  }

  #flush(): void {
    this.#timer = undefined;
    if (this.#pending === "" || this.res.writableEnded || this.res.destroyed) return;
    this.res.write(this.#pending);
    this.#pending = "";
    this.#lastWrite = this.now();
  }
}
