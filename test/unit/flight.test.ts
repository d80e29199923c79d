import type {Engine, GenerateOptions, GenerationResult} from "../../inference-image/src/core/generation.js";
import {Flight, FlightRegistry} from "../../inference-image/src/http/flight.js";
import type {InferenceRequest} from "../../inference-image/src/core/request.js";

/**
 * The engine is replaced by one whose generations end only when the test says so: it stands
 * for a model whose prompt evaluation cannot be interrupted, the window in which the bug
 * lived. Flight and FlightRegistry are the real ones. (The real server is exercised in
 * test/integration/cache-server.test.ts.)
 */
class HeldEngine implements Pick<Engine, "generate"> {
  readonly modelName = "held";
  readonly slots = {size: 1, busy: 0, queued: 0};
  readonly calls: Array<{options: GenerateOptions; end: (r: GenerationResult) => void}> = [];
  generate(_request: InferenceRequest, options: GenerateOptions): Promise<GenerationResult> {
    return new Promise((resolve) => {
      this.calls.push({options, end: resolve});
      options.onStart?.();
    });
  }
  stopAccepting(): void {}
  memory = async () => ({ram: 0, vram: 0});
  close = async () => {};
}

const result = (stopCause: GenerationResult["stopCause"], text = ""): GenerationResult => ({text, finishReason: stopCause === "eos" ? "stop" : "length", stopCause, promptTokens: 3, cachedTokens: 0, completionTokens: text.length, queueMs: 0});
const request = {} as InferenceRequest;
const listener = () => {
  const heard: string[] = [];
  return {heard, onStart: () => heard.push("start"), onText: (t: string) => heard.push(t), onEnd: (r: GenerationResult) => heard.push(`end:${r.stopCause}`), onError: () => heard.push("error")};
};

describe("FlightRegistry", () => {
  it("lets identical requests share a running generation", () => {
    const engine = new HeldEngine();
    const flights = new FlightRegistry();
    const a = flights.join("k", () => new Flight(engine, request, 60_000));
    const b = flights.join("k", () => new Flight(engine, request, 60_000));
    expect([a.joined, b.joined, b.flight === a.flight, engine.calls.length]).toEqual([false, true, true, 1]);
  });

  it("never joins a generation that every client has left, even before it ends", async () => {
    const engine = new HeldEngine();
    const flights = new FlightRegistry();
    const first = flights.join("k", () => new Flight(engine, request, 60_000));
    const leave = first.flight.attach(listener());
    expect(leave()).toBe(true); // the last client left: the generation is told to stop...
    expect(engine.calls[0]!.options.signal.aborted).toBe(true);
    // ...but has not ended yet when the same request comes again (a client retrying).
    const retry = flights.join("k", () => new Flight(engine, request, 60_000));
    expect(retry.joined).toBe(false);
    expect(engine.calls.length).toBe(2);
    const l = listener();
    retry.flight.attach(l);
    engine.calls[0]!.end(result("aborted"));
    engine.calls[1]!.end(result("eos", "hi"));
    await retry.flight.done;
    expect(l.heard).toEqual(["start", "end:eos"]);
  });

  it("never joins a generation whose deadline has passed", async () => {
    const engine = new HeldEngine();
    const flights = new FlightRegistry();
    flights.join("k", () => new Flight(engine, request, 1));
    await new Promise((r) => setTimeout(r, 20));
    expect(engine.calls[0]!.options.signal.aborted).toBe(true);
    expect(flights.join("k", () => new Flight(engine, request, 60_000)).joined).toBe(false);
  });
});

describe("Flight", () => {
  it("replays each chunk to a late joiner with the logprobs it came with, then follows live", async () => {
    const engine = new HeldEngine();
    const flight = new Flight(engine, request, 60_000);
    const lp = (token: string) => ({token, logprob: -1, bytes: [...Buffer.from(token)], top: []});
    const {options} = engine.calls[0]!;
    options.onText?.("Once", [lp("Once")]);
    options.onText?.(" upon", undefined);
    const heard: Array<[string, string[] | undefined]> = [];
    flight.attach({onStart: () => {}, onText: (t, l) => heard.push([t, l?.map((x) => x.token)]), onEnd: () => {}, onError: () => {}});
    options.onText?.(" a", [lp(" a")]);
    engine.calls[0]!.end(result("eos", "Once upon a"));
    await flight.done;
    expect(heard).toEqual([
      ["Once", ["Once"]],
      [" upon", undefined],
      [" a", [" a"]]
    ]);
  });
});
