import type {FinishReason, TokenLogprob} from "../core/generation.js";
import type {CompletionRecord} from "../core/record.js";
import type {Endpoint, Tools} from "../core/request.js";
import {forcedCall, ToolCallStream, toolCallOf, type ToolCallDelta} from "./tool-calls.js";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** As OpenAI reports prompt caching. */
  prompt_tokens_details: {cached_tokens: number};
}

export const usageOf = (r: Pick<CompletionRecord, "promptTokens" | "completionTokens" | "cachedTokens">): Usage => ({
  prompt_tokens: r.promptTokens,
  completion_tokens: r.completionTokens,
  total_tokens: r.promptTokens + r.completionTokens,
  prompt_tokens_details: {cached_tokens: r.cachedTokens ?? 0}
});

type Counts = Pick<CompletionRecord, "promptTokens" | "completionTokens" | "cachedTokens">;

/**
 * Usage of choices, `n` per prompt (prompt-major, as a batch orders them): each prompt once,
 * every choice's completion.
 */
export function totalOf(records: readonly Counts[], n = records.length): Counts {
  const firsts = records.filter((_, i) => i % n === 0);
  return {
    promptTokens: firsts.reduce((a, r) => a + r.promptTokens, 0),
    cachedTokens: firsts.reduce((a, r) => a + (r.cachedTokens ?? 0), 0),
    completionTokens: records.reduce((a, r) => a + r.completionTokens, 0)
  };
}

/**
 * Builds OpenAI response bodies and stream chunks for one response id. Pure: the same
 * record renders the same body whether it was just generated or replayed from cache.
 */
export class ResponseFormatter {
  readonly id: string;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly model: string,
    requestId: string,
    /** Unix seconds. */
    private readonly created: number,
    private readonly includeUsage = false,
    /** The reply is a tool call: text renders as `tool_calls`. */
    private readonly tools?: Tools
  ) {
    this.id = `${endpoint === "chat" ? "chatcmpl" : "cmpl"}-${requestId}`;
    this.#callId = `call_${requestId}`;
  }

  readonly #callId: string;
  // A forced call streams as tool-call deltas, one parser per choice.
  readonly #streams = new Map<number, ToolCallStream>();
  /**
   * Per choice whose logprobs came with its text: those not sent yet (a tool call's deltas
   * are not text, so its logprobs wait for the closing chunk). A choice not here gets the
   * record's logprobs on its closing chunk.
   */
  readonly #heldLogprobs = new Map<number, TokenLogprob[]>();
  /** Per choice, where the next streamed piece starts in its text (legacy `text_offset`). */
  readonly #textAt = new Map<number, number>();

  /** Call ids unique in the response: choice 0 keeps the plain id (as cached replays have it). */
  #callIdOf(index: number): string {
    return index === 0 ? this.#callId : `${this.#callId}_c${index}`;
  }

  /** A tool call's finish: "tool_calls" once the call is complete, "length" when cut. */
  #finishReason(record: Pick<CompletionRecord, "finishReason" | "toolCalls">): FinishReason | "tool_calls" {
    return (forcedCall(this.tools) || record.toolCalls?.length) && record.finishReason === "stop" ? "tool_calls" : record.finishReason;
  }

  /** The model's own calls (auto), with ids unique in this response. */
  #calls(record: Pick<CompletionRecord, "toolCalls">, index = 0) {
    return (record.toolCalls ?? []).map((c, i) => ({id: `${this.#callIdOf(index)}_${i}`, type: "function", function: {name: c.name, arguments: c.arguments}}));
  }

  /** The non-streaming body. */
  body(record: CompletionRecord): Record<string, unknown> {
    if (this.endpoint === "generate") return {result: record.chunks.join("")};
    return this.choicesBody([record]);
  }

  /**
   * A body with one choice per record (`n` per prompt). Usage counts each prompt once and
   * every choice's tokens, as OpenAI does.
   */
  choicesBody(records: readonly CompletionRecord[], n = records.length): Record<string, unknown> {
    const choices = records.map((record, index) => {
      const text = record.chunks.join("");
      const logprobs = this.#logprobs(record.logprobs);
      if (record.toolCalls?.length) {
        const message = {role: "assistant", content: text === "" ? null : text, tool_calls: this.#calls(record, index), refusal: null};
        return {index, message, logprobs, finish_reason: this.#finishReason(record)};
      }
      if (forcedCall(this.tools)) {
        const call = toolCallOf(text, this.tools);
        const message = {role: "assistant", content: null, tool_calls: [{id: this.#callIdOf(index), type: "function", function: call}], refusal: null};
        return {index, message, logprobs, finish_reason: this.#finishReason(record)};
      }
      return this.endpoint === "chat"
        ? {index, message: {role: "assistant", content: text, refusal: null}, logprobs, finish_reason: record.finishReason}
        : {index, text, logprobs, finish_reason: record.finishReason};
    });
    return {
      id: this.id,
      object: this.endpoint === "chat" ? "chat.completion" : "text_completion",
      created: this.created,
      model: this.model,
      choices,
      usage: usageOf(totalOf(records, n))
    };
  }

  /**
   * Chunks sent before any text: chat streams announce the assistant role first. With
   * tools the content starts null, as OpenAI sends it (and as the body has it when the
   * reply is only calls), so stream helpers end with the same message either way.
   */
  opening(index = 0): Record<string, unknown>[] {
    return this.endpoint === "chat" ? [this.chunk({role: "assistant", content: this.tools ? null : ""}, null, index)] : [];
  }

  /**
   * The chunks a piece of generated text becomes (a tool call's deltas may be none yet), with
   * the logprobs of the tokens that start in it, as OpenAI streams them.
   */
  text(piece: string, index = 0, logprobs?: readonly TokenLogprob[]): Record<string, unknown>[] {
    const at = this.#textAt.get(index) ?? 0;
    this.#textAt.set(index, at + piece.length);
    let held = this.#heldLogprobs.get(index);
    if (logprobs && !held) this.#heldLogprobs.set(index, (held = []));
    const stream = this.#streamOf(index);
    if (stream) {
      if (logprobs) held!.push(...logprobs);
      return stream.push(piece).map((d) => this.chunk({tool_calls: [this.#toolDelta(d, index)]}, null, index));
    }
    return [this.chunk(this.endpoint === "chat" ? {content: piece} : piece, null, index, logprobs?.length ? logprobs : undefined, at)];
  }

  #streamOf(index: number): ToolCallStream | undefined {
    if (!forcedCall(this.tools)) return undefined;
    let stream = this.#streams.get(index);
    if (!stream) this.#streams.set(index, (stream = new ToolCallStream(this.tools)));
    return stream;
  }

  #toolDelta(d: ToolCallDelta, index: number) {
    return d.kind === "header" ? {index: 0, id: this.#callIdOf(index), type: "function", function: {name: d.name, arguments: ""}} : {index: 0, function: {arguments: d.text}};
  }

  /**
   * The chunks that end one choice: the model's own calls (known once it stops), then the
   * one that carries `finish_reason` (and the choice's logprobs, unless they came with its
   * text).
   */
  closing(record: Pick<CompletionRecord, "finishReason" | "logprobs" | "toolCalls">, index = 0): Record<string, unknown>[] {
    const held = this.#heldLogprobs.get(index);
    const logprobs = held ? (held.length > 0 ? held : undefined) : record.logprobs;
    const calls = this.#calls(record, index).flatMap((c, i) => [
      this.chunk({tool_calls: [{index: i, id: c.id, type: "function", function: {name: c.function.name, arguments: ""}}]}, null, index),
      this.chunk({tool_calls: [{index: i, function: {arguments: c.function.arguments}}]}, null, index)
    ]);
    return [...calls, this.chunk(this.endpoint === "chat" ? {} : "", this.#finishReason(record), index, logprobs, this.#textAt.get(index) ?? 0)];
  }

  /** A one-choice stream's end: its closing, then the usage chunk when the client asked for it. */
  ending(record: Pick<CompletionRecord, "finishReason" | "promptTokens" | "completionTokens" | "cachedTokens" | "logprobs" | "toolCalls">): Record<string, unknown>[] {
    return this.includeUsage ? [...this.closing(record), this.usageChunk(record)] : this.closing(record);
  }

  /**
   * Chat: `{content: [{token, logprob, bytes, top_logprobs}]}`; completions: the legacy
   * parallel arrays, their offsets counted from `at` (where a streamed piece starts).
   */
  #logprobs(logprobs: readonly TokenLogprob[] | undefined, at = 0): Record<string, unknown> | null {
    if (!logprobs) return null;
    if (this.endpoint === "chat") {
      return {content: logprobs.map((l) => ({token: l.token, logprob: l.logprob, bytes: l.bytes, top_logprobs: l.top})), refusal: null};
    }
    let offset = at;
    const textOffset = logprobs.map((l) => {
      const at = offset;
      offset += l.token.length;
      return at;
    });
    return {
      tokens: logprobs.map((l) => l.token),
      token_logprobs: logprobs.map((l) => l.logprob),
      top_logprobs: logprobs.map((l) => Object.fromEntries(l.top.map((t) => [t.token, t.logprob]))),
      text_offset: textOffset
    };
  }

  usageChunk(record: Pick<CompletionRecord, "promptTokens" | "completionTokens" | "cachedTokens">): Record<string, unknown> {
    return {...this.envelope(), choices: [], usage: usageOf(record)};
  }

  /** Every chunk of a stream for a finished record, as a replay sends them: logprobs chunk by chunk, as live. */
  allChunks(record: CompletionRecord): Record<string, unknown>[] {
    const parts = record.logprobs && logprobsByChunk(record.chunks, record.logprobs);
    return [...this.opening(), ...record.chunks.flatMap((c, i) => this.text(c, 0, parts?.[i])), ...this.ending(record)];
  }

  private chunk(delta: Record<string, unknown> | string, finishReason: FinishReason | "tool_calls" | null, index = 0, logprobs?: readonly TokenLogprob[], at = 0): Record<string, unknown> {
    const lp = this.#logprobs(logprobs, at);
    const choice = typeof delta === "string" ? {index, text: delta, logprobs: lp, finish_reason: finishReason} : {index, delta, logprobs: lp, finish_reason: finishReason};
    return {...this.envelope(), choices: [choice], ...(this.includeUsage ? {usage: null} : {})};
  }

  private envelope() {
    return {
      id: this.id,
      object: this.endpoint === "chat" ? "chat.completion.chunk" : "text_completion",
      created: this.created,
      model: this.model
    };
  }
}

/**
 * A finished reply's logprobs shared out among its text pieces: each token to the piece in
 * which its text starts (the live rule, engine/live-logprobs.ts); any left over (their text
 * cut short) go with the last piece.
 */
export function logprobsByChunk(chunks: readonly string[], logprobs: readonly TokenLogprob[]): TokenLogprob[][] {
  const parts = chunks.map((): TokenLogprob[] => []);
  let end = 0;
  let offset = 0;
  let t = 0;
  chunks.forEach((chunk, i) => {
    end += chunk.length;
    for (; t < logprobs.length && offset < end; t++) {
      parts[i]!.push(logprobs[t]!);
      offset += logprobs[t]!.token.length;
    }
  });
  if (parts.length > 0) parts.at(-1)!.push(...logprobs.slice(t));
  return parts;
}
