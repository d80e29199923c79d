import type {AddressInfo} from "node:net";
import express from "express";
import {COALESCE_MS, SseStream} from "../../inference-image/src/http/sse.js";

/**
 * The SSE writer over a real express server and socket: events closer together than
 * COALESCE_MS leave in one write, in order, and nothing is lost at the end.
 */
describe("SseStream", () => {
  it("sends the first event at once, coalesces a burst, keeps order, and flushes everything before [DONE]", async () => {
    const writes: string[] = [];
    const app = express();
    app.get("/", (_req, res) => {
      // A spy on the real response: count the writes, pass them on.
      const write = res.write.bind(res) as (chunk: string) => boolean;
      res.write = ((chunk: string) => {
        writes.push(chunk);
        return write(chunk);
      }) as typeof res.write;
      const sse = new SseStream(res);
      sse.start();
      sse.send({n: 1});
      sse.send({n: 2});
      sse.send({n: 3});
      setTimeout(() => {
        sse.send({n: 4});
        sse.send({n: 5});
        sse.end();
      }, 10 * COALESCE_MS + 50);
    });
    const server = app.listen(0, "127.0.0.1");
    await new Promise((r) => server.once("listening", r));
    try {
      const body = await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`)).text();
      const events = body.split("\n\n").filter(Boolean);
      expect(events).toEqual(["data: {\"n\":1}", "data: {\"n\":2}", "data: {\"n\":3}", "data: {\"n\":4}", "data: {\"n\":5}", "data: [DONE]"]);
      // 1 alone; 2 and 3 together after the window; 4 alone (the window had passed); 5 with [DONE] in end().
      expect(writes).toEqual(["data: {\"n\":1}\n\n", "data: {\"n\":2}\n\ndata: {\"n\":3}\n\n", "data: {\"n\":4}\n\n"]);
    } finally {
      server.close();
    }
  });
});
