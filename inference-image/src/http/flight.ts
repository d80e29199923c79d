import type {Engine, GenerationResult, TokenLogprob} from "../core/generation.js";
import type {InferenceRequest} from "../core/request.js";

/** What a request handler hears from the generation it is attached to. */
export interface FlightListener {
  /** A slot is held: streams may open. */
  onStart(): void;
  onText(piece: string, logprobs?: readonly TokenLogprob[]): void;
  onEnd(result: GenerationResult): void;
  onError(error: unknown): void;
}

/**
 * One generation, possibly shared by several identical requests. Listeners that join late
 * are replayed what happened so far, then follow live. The generation is aborted only when
 * every listener has left, so one impatient client cannot cut the others' answer short.
 */
export class Flight {
  readonly #listeners = new Set<FlightListener>();
  readonly #chunks: string[] = [];
  /** Each chunk's logprobs, when they came with it: a late joiner is replayed them too. */
  readonly #chunkLogprobs: Array<readonly TokenLogprob[] | undefined> = [];
  readonly #abort = new AbortController();
  readonly #signal: AbortSignal;
  #started = false;
  #outcome: {result: GenerationResult} | {error: unknown} | undefined;
  /** Settles with the result (or rejects) when generation ends. */
  readonly done: Promise<GenerationResult>;

  /**
   * `finish` runs when generation ends and before any listener hears of it: the cache
   * stores the entry there, so a client that repeats its request right after its response
   * finds it (read-your-writes). It must not throw; a slow store is bounded by its timeout.
   */
  constructor(
    engine: Pick<Engine, "generate">,
    request: InferenceRequest,
    timeoutMs: number,
    options: {
      finish?: (result: GenerationResult, chunks: readonly string[]) => Promise<void>;
      /** Who asks (a flight is shared only within a tenant: the cache key holds it). */
      tenant?: string;
    } = {}
  ) {
    const {finish, tenant} = options;
    const deadline = AbortSignal.timeout(timeoutMs);
    this.#signal = AbortSignal.any([this.#abort.signal, deadline]);
    const generation = engine.generate(request, {
      ...(tenant === undefined ? {} : {tenant}),
      signal: this.#signal,
      timedOut: () => deadline.aborted,
      onStart: () => {
        this.#started = true;
        for (const l of this.#listeners) l.onStart();
      },
      onText: (piece, logprobs) => {
        this.#chunks.push(piece);
        this.#chunkLogprobs.push(logprobs);
        for (const l of this.#listeners) l.onText(piece, logprobs);
      }
    });
    this.done = finish ? generation.then(async (result) => (await finish(result, this.#chunks), result)) : generation;
    this.done.then(
      (result) => {
        this.#outcome = {result};
        for (const l of this.#listeners) l.onEnd(result);
      },
      (error: unknown) => {
        this.#outcome = {error};
        for (const l of this.#listeners) l.onError(error);
      }
    );
  }

  /** Text pieces produced so far. */
  get chunks(): readonly string[] {
    return this.#chunks;
  }

  /**
   * Whether a new identical request may still share this generation: not once it ended, nor
   * once it was told to stop (every client left, or its deadline passed). A stopped
   * generation can take a while to end (prompt evaluation is not interruptible), and a
   * request joining it then would get its truncated, "aborted" result.
   */
  get joinable(): boolean {
    return this.#outcome === undefined && !this.#signal.aborted;
  }

  /**
   * Attaches a listener, replaying past events to it first. Returns the detach function,
   * which reports whether that listener was the last one (and so aborted the generation).
   */
  attach(listener: FlightListener): () => boolean {
    if (this.#started) listener.onStart();
    this.#chunks.forEach((piece, i) => listener.onText(piece, this.#chunkLogprobs[i]));
    if (this.#outcome) {
      if ("result" in this.#outcome) listener.onEnd(this.#outcome.result);
      else listener.onError(this.#outcome.error);
      return () => false;
    }
    this.#listeners.add(listener);
    return () => {
      if (!this.#listeners.delete(listener) || this.#listeners.size > 0 || this.#outcome) return false;
      this.#abort.abort(new Error("every client left"));
      return true;
    };
  }
}

/**
 * Identical in-flight requests (same cache key) share one Flight on this replica.
 * Entries leave the registry when their flight ends; what they produced lives on in the cache.
 */
export class FlightRegistry {
  readonly #flights = new Map<string, Flight>();

  /** The running flight for `key`, or a new one from `start`; `joined` says which. */
  join(key: string, start: () => Flight): {flight: Flight; joined: boolean} {
    const running = this.#flights.get(key);
    if (running?.joinable) return {flight: running, joined: true};
    const flight = start();
    this.#flights.set(key, flight);
    const forget = () => {
      if (this.#flights.get(key) === flight) this.#flights.delete(key);
    };
    flight.done.then(forget, forget);
    return {flight, joined: false};
  }

  get size(): number {
    return this.#flights.size;
  }
}
