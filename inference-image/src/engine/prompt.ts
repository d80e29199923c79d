import type {ChatHistoryItem, ChatModelFunctions, ChatWrapper, GbnfJsonSchema, LlamaModel, LlamaText, Token} from "node-llama-cpp";
import {invalidRequest} from "../core/errors.js";
import type {Prompt, Tools} from "../core/request.js";
import {withoutForeignFormats} from "../openai/schema-rules.js";
import {toChatHistory} from "./chat-history.js";

/** A prompt as the engine evaluates it. */
export interface RenderedPrompt {
  /** What LlamaCompletion is given (it prepends BOS itself). */
  readonly tokens: Token[];
  /** What the slot will hold: BOS (when the model wants one), then `tokens`. */
  readonly evaluated: Token[];
  /** `evaluated.length`: the prompt tokens usage reports. */
  readonly promptTokens: number;
  /** The chat template's end-of-turn markers. */
  readonly stopTriggers: LlamaText[];
  /** The chat history (chat prompts only): tool_choice auto hands it to LlamaChat. */
  readonly history?: ChatHistoryItem[];
  /**
   * The reply continues the prompt's text (legacy completions, a prefilled assistant turn),
   * so its first token is decoded after the prompt's: SentencePiece drops a leading space at
   * the start of a text, which is right for a reply that opens a turn and wrong for " there".
   */
  readonly continues: boolean;
}

/**
 * Turns a prompt into the tokens to evaluate. Chat messages go through the model's chat
 * template (or node-llama-cpp's best match when the GGUF has none); its end-of-turn
 * markers become stop triggers. `promptTokens` counts the BOS token llama.cpp prepends.
 */
export function renderPrompt(model: LlamaModel, chatWrapper: ChatWrapper, prompt: Prompt, vocabulary: number, tools?: Tools): RenderedPrompt {
  const bos = model.tokens.bos;
  const prependsBos = model.tokens.shouldPrependBosToken && bos !== null;
  let tokens: Token[];
  let stopTriggers: LlamaText[] = [];
  let history: ChatHistoryItem[] | undefined;
  if (prompt.kind === "text") {
    tokens = model.tokenize(prompt.text);
  } else if (prompt.kind === "tokens") {
    tokens = checkedTokens(prompt.tokens, vocabulary);
  } else {
    // Offered tools are documented in the prompt as the model's template does it.
    const availableFunctions = tools ? functionsOf(tools) : undefined;
    history = toChatHistory(prompt.messages);
    const state = chatWrapper.generateContextState({chatHistory: history, ...(availableFunctions ? {availableFunctions, documentFunctionParams: true} : {})});
    tokens = state.contextText.tokenize(model.tokenizer);
    stopTriggers = state.stopGenerationTriggers;
    // The template already starts with BOS; LlamaCompletion adds its own, so drop the template's.
    if (prependsBos && tokens[0] === bos) tokens = tokens.slice(1);
  }
  const evaluated = prependsBos ? [bos, ...tokens] : tokens;
  const continues = prompt.kind !== "chat" || prompt.messages.at(-1)?.role === "assistant";
  return {tokens, evaluated, promptTokens: evaluated.length, stopTriggers, continues, ...(history ? {history} : {})};
}

/** Token ids as given, once each is known to be in the model's vocabulary (llama.cpp aborts on one that is not). */
function checkedTokens(ids: readonly number[], vocabularySize: number): Token[] {
  const bad = ids.find((id) => id >= vocabularySize);
  if (bad !== undefined) throw invalidRequest(`Invalid token id ${bad} in 'prompt': this model's vocabulary has ${vocabularySize} tokens (ids 0-${vocabularySize - 1}).`, "prompt", "invalid_value");
  return ids as Token[];
}

/** The tools as node-llama-cpp's chat wrappers document and parse them. */
export function functionsOf(tools: Tools): ChatModelFunctions {
  return Object.fromEntries(tools.functions.map((f) => [f.name, {...(f.description ? {description: f.description} : {}), params: withoutForeignFormats(f.parameters) as GbnfJsonSchema}]));
}
