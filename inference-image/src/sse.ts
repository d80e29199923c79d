import type {Response} from "express";
import type {ApiError} from "./errors.js";

/**
 * Server-sent events in OpenAI's framing: `data: <json>` events and a final `data: [DONE]`.
 * Once the stream has started its status is 200, so an error becomes a last error event.
 */
export class SseStream {
  #open = false;

  constructor(private readonly res: Response) {}

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
    if (!this.res.writableEnded && !this.res.destroyed) this.res.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    if (this.res.writableEnded || this.res.destroyed) return;
    this.res.end("data: [DONE]\n\n");
  }

  fail(error: ApiError): void {
    this.send(error.toBody());
    this.end();
  }
}
