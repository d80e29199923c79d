/**
 * Finds OpenAI `stop` strings in streamed text. Text that might be the start of a stop
 * string is held back until the next chunk decides it, so a client never receives any
 * part of a stop string, and receives everything before it, even when the stop begins in
 * the middle of a token (" Lily" for stop "Lily" leaves the space in the output).
 */
export class StopDetector {
  #pending = "";
  #stopped = false;

  constructor(private readonly stops: readonly string[]) {}

  get stopped(): boolean {
    return this.#stopped;
  }

  /** Feeds generated text; returns what is safe to emit now. */
  push(chunk: string): string {
    if (this.#stopped) return "";
    const text = this.#pending + chunk;
    const cut = firstStop(text, this.stops);
    if (cut !== undefined) {
      this.#stopped = true;
      this.#pending = "";
      return text.slice(0, cut);
    }
    const hold = longestStopPrefixSuffix(text, this.stops);
    this.#pending = text.slice(text.length - hold);
    return text.slice(0, text.length - hold);
  }

  /** Generation ended without a stop: release the held-back text. */
  flush(): string {
    const rest = this.#stopped ? "" : this.#pending;
    this.#pending = "";
    return rest;
  }
}

function firstStop(text: string, stops: readonly string[]): number | undefined {
  let best: number | undefined;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best === undefined || i < best)) best = i;
  }
  return best;
}

/** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
function longestStopPrefixSuffix(text: string, stops: readonly string[]): number {
  let best = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
      if (text.endsWith(s.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}
