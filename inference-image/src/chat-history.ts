import type {ChatHistoryItem} from "node-llama-cpp";
import {invalidRequest} from "./errors.js";
import type {ChatMessage} from "./openai-request.js";

/**
 * OpenAI messages as node-llama-cpp's chat history, ending in the open model turn the
 * template renders the reply into. A trailing assistant message (prefill) is refused.
 */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  for (const m of messages) {
    if (m.role === "system") history.push({type: "system", text: m.content});
    else if (m.role === "user") history.push({type: "user", text: m.content});
    else history.push({type: "model", response: [m.content]});
  }
  // The template renders an open model turn only after a model item; an empty one asks for the reply.
  if (history.at(-1)?.type !== "model") history.push({type: "model", response: []});
  else throw invalidRequest("The last message must not be from the assistant: there is nothing to reply to.", "messages");
  return history;
}
