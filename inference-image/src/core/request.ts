/**
 * The internal request: what every OpenAI shape (chat, legacy completions, the seed's
 * `/generate`) is parsed into, and what the engine, the cache and the responses read.
 * Types only; the parsers live in openai/.
 */

/** Which public endpoint a request came through; part of cache keys and metric labels. */
export type Endpoint = "chat" | "completions" | "generate";

export interface ChatMessage {
  readonly role: "system" | "user" | "assistant" | "tool";
  readonly content: string;
  /** An assistant's calls (history). */
  readonly toolCalls?: readonly ToolCall[];
  /** A tool message: the call it answers. */
  readonly toolCallId?: string;
}

export interface ToolCall {
  readonly id: string;
  readonly name: string;
  /** The arguments as the client sent them: a JSON string. */
  readonly arguments: string;
}

/** A function the model may call, its parameters translated to the grammar's subset. */
export interface ToolFunction {
  readonly name: string;
  readonly description: string | undefined;
  readonly parameters: Readonly<Record<string, unknown>>;
}

/**
 * Tools offered, and how the reply must use them: `auto` (the model decides, in its own
 * function-calling syntax, parsed by node-llama-cpp), `required` (one call to any of them)
 * or `named` (one call to that function); the last two grammar-constrained to the parameters.
 */
export interface Tools {
  readonly functions: readonly ToolFunction[];
  readonly choice: {readonly kind: "auto"; readonly parallel: boolean} | {readonly kind: "required"} | {readonly kind: "named"; readonly name: string};
}

export type Prompt =
  | {readonly kind: "chat"; readonly messages: readonly ChatMessage[]}
  | {readonly kind: "text"; readonly text: string}
  /** Legacy completions' pre-tokenized prompt: token ids of the model's vocabulary. */
  | {readonly kind: "tokens"; readonly tokens: readonly number[]};

/** Every parameter that changes the output. Absent `seed` means "random each call". */
export interface SamplingParams {
  readonly temperature: number;
  readonly topP: number;
  readonly topK: number;
  readonly minP: number;
  readonly seed: number | undefined;
  /** Upper bound on generated tokens; `undefined` = until the slot's context is full. */
  readonly maxTokens: number | undefined;
  readonly stop: readonly string[];
  readonly presencePenalty: number;
  readonly frequencyPenalty: number;
  /** `logit_bias` as [token id, bias] pairs, sorted by id; -100 bans a token. */
  readonly logitBias: ReadonlyArray<readonly [number, number]>;
}

/**
 * What the output must be: free text, a JSON object, or JSON valid against a schema
 * (already translated to the grammar's subset, see openai/json-schema.ts).
 */
export type ResponseFormat =
  | {readonly kind: "text"}
  | {readonly kind: "json_object"}
  | {readonly kind: "json_schema"; readonly name: string; readonly schema: Readonly<Record<string, unknown>>; readonly strict: boolean};

/** A validated request, independent of which OpenAI shape it arrived in. */
export interface InferenceRequest {
  readonly endpoint: Endpoint;
  readonly model: string | undefined;
  readonly prompt: Prompt;
  readonly params: SamplingParams;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly format: ResponseFormat;
  /** Choices to generate (`n`); at most the server's slots. */
  readonly n: number;
  /**
   * Legacy completions with several prompts (`prompt` as an array): every prompt gets `n`
   * choices, prompt-major (choice index = prompt index x n + i). `prompt` is the first.
   */
  readonly batch?: readonly Prompt[];
  /** Tools the reply must call; undefined for a plain reply. */
  readonly tools?: Tools;
  /** Log probabilities of the output tokens, with this many alternatives each; undefined: none. */
  readonly logprobs?: {readonly top: number};
}
