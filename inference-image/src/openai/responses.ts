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

/** Usage of several choices of one prompt: the prompt once, every choice's completion. */
export function totalOf(records: ReadonlyArray<Pick<CompletionRecord, "promptTokens" | "completionTokens" | "cachedTokens">>): Pick<CompletionRecord, "promptTokens" | "completionTokens" | "cachedTokens"> {
  const first = records[0]!;
  return {promptTokens: first.promptTokens, cachedTokens: first.cachedTokens ?? 0, completionTokens: records.reduce((a, r) => a + r.completionTokens, 0)};
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
    this.#stream = forcedCall(tools) ? new ToolCallStream(tools) : undefined;
  }

  readonly #callId: string;
  readonly #stream: ToolCallStream | undefined;

  /** A tool call's finish: "tool_calls" once the call is complete, "length" when cut. */
  #finishReason(record: Pick<CompletionRecord, "finishReason" | "toolCalls">): FinishReason | "tool_calls" {
    return (forcedCall(this.tools) || record.toolCalls?.length) && record.finishReason === "stop" ? "tool_calls" : record.finishReason;
  }

  /** The model's own calls (auto), with ids unique in this response. */
  #calls(record: Pick<CompletionRecord, "toolCalls">) {
    return (record.toolCalls ?? []).map((c, i) => ({id: `${this.#callId}_${i}`, type: "function", function: {name: c.name, arguments: c.arguments}}));
  }

  /** The non-streaming body. */
  body(record: CompletionRecord): Record<string, unknown> {
    if (this.endpoint === "generate") return {result: record.chunks.join("")};
    return this.choicesBody([record]);
  }

  /**
   * A body with one choice per record (`n`). Usage counts the prompt once and every
   * choice's tokens, as OpenAI does.
   */
  choicesBody(records: readonly CompletionRecord[]): Record<string, unknown> {
    const choices = records.map((record, index) => {
      const text = record.chunks.join("");
      if (record.toolCalls?.length) {
        const message = {role: "assistant", content: text === "" ? null : text, tool_calls: this.#calls(record), refusal: null};
        return {index, message, logprobs: null, finish_reason: this.#finishReason(record)};
      }
      if (forcedCall(this.tools)) {
        const call = toolCallOf(text, this.tools);
        const message = {role: "assistant", content: null, tool_calls: [{id: this.#callId, type: "function", function: call}], refusal: null};
        return {index, message, logprobs: null, finish_reason: this.#finishReason(record)};
      }
      return this.endpoint === "chat"
        ? {index, message: {role: "assistant", content: text, refusal: null}, logprobs: this.#logprobs(record.logprobs), finish_reason: record.finishReason}
        : {index, text, logprobs: this.#logprobs(record.logprobs), finish_reason: record.finishReason};
    });
    return {
      id: this.id,
      object: this.endpoint === "chat" ? "chat.completion" : "text_completion",
      created: this.created,
      model: this.model,
      choices,
      usage: usageOf(totalOf(records))
    };
  }

  /** Chunks sent before any text: chat streams announce the assistant role first. */
  opening(index = 0): Record<string, unknown>[] {
    return this.endpoint === "chat" ? [this.chunk({role: "assistant", content: ""}, null, index)] : [];
  }

  /** The chunks a piece of generated text becomes (a tool call's deltas may be none yet). */
  text(piece: string, index = 0): Record<string, unknown>[] {
    if (this.#stream) return this.#stream.push(piece).map((d) => this.chunk({tool_calls: [this.#toolDelta(d)]}, null, index));
    return [this.chunk(this.endpoint === "chat" ? {content: piece} : piece, null, index)];
  }

  #toolDelta(d: ToolCallDelta) {
    return d.kind === "header" ? {index: 0, id: this.#callId, type: "function", function: {name: d.name, arguments: ""}} : {index: 0, function: {arguments: d.text}};
  }

  /**
   * The chunk that carries `finish_reason` (and the choice's logprobs, which are computed
   * once the reply is complete), and the usage chunk when the client asked for it.
   */
  closing(record: Pick<CompletionRecord, "finishReason" | "promptTokens" | "completionTokens" | "cachedTokens" | "logprobs" | "toolCalls">): Record<string, unknown>[] {
    // The model's own calls are known once it stops: each goes out as OpenAI streams one.
    const calls = this.#calls(record).flatMap((c, i) => [
      this.chunk({tool_calls: [{index: i, id: c.id, type: "function", function: {name: c.function.name, arguments: ""}}]}, null),
      this.chunk({tool_calls: [{index: i, function: {arguments: c.function.arguments}}]}, null)
    ]);
    const last = this.chunk(this.endpoint === "chat" ? {} : "", this.#finishReason(record), 0, record.logprobs);
    if (!this.includeUsage) return [...calls, last];
    return [...calls, last, this.usageChunk(record)];
  }

  /** The chunk that ends one choice of several. */
  finish(record: Pick<CompletionRecord, "finishReason" | "logprobs">, index: number): Record<string, unknown> {
    return this.chunk(this.endpoint === "chat" ? {} : "", record.finishReason, index, record.logprobs);
  }

  /** Chat: `{content: [{token, logprob, bytes, top_logprobs}]}`; completions: the legacy parallel arrays. */
  #logprobs(logprobs: readonly TokenLogprob[] | undefined): Record<string, unknown> | null {
    if (!logprobs) return null;
    if (this.endpoint === "chat") {
      return {content: logprobs.map((l) => ({token: l.token, logprob: l.logprob, bytes: l.bytes, top_logprobs: l.top})), refusal: null};
    }
    let offset = 0;
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

  /** Every chunk of a stream for a finished record, as a replay sends them. */
  allChunks(record: CompletionRecord): Record<string, unknown>[] {
    return [...this.opening(), ...record.chunks.flatMap((c) => this.text(c)), ...this.closing(record)];
  }

  private chunk(delta: Record<string, unknown> | string, finishReason: FinishReason | "tool_calls" | null, index = 0, logprobs?: readonly TokenLogprob[]): Record<string, unknown> {
    const lp = this.#logprobs(logprobs);
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
