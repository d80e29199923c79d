import type {ChatHistoryItem, ChatModelFunctionCall} from "node-llama-cpp";
import {invalidRequest} from "../core/errors.js";
import type {ChatMessage} from "../core/request.js";

/** A JSON text as its value, or the text itself when it is not JSON (the template prints either). */
const parsed = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
};

/**
 * OpenAI messages as node-llama-cpp's chat history, ending in the open model turn the
 * template renders the reply into. An assistant's tool calls become function calls of its
 * turn, each with the result of the `tool` message that answers it (by `tool_call_id`),
 * as the model's template renders calls and results. A trailing assistant message is a
 * prefill: the reply continues it (as llama.cpp's server does), and holds only the new text.
 */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  const pending = new Map<string, ChatModelFunctionCall>();
  messages.forEach((m, i) => {
    if (m.role === "system") history.push({type: "system", text: m.content});
    else if (m.role === "user") history.push({type: "user", text: m.content});
    else if (m.role === "assistant") {
      const response: Array<string | ChatModelFunctionCall> = m.content === "" ? [] : [m.content];
      for (const call of m.toolCalls ?? []) {
        const item: ChatModelFunctionCall = {type: "functionCall", name: call.name, params: parsed(call.arguments), result: null};
        pending.set(call.id, item);
        response.push(item);
      }
      history.push({type: "model", response});
    } else {
      const call = pending.get(m.toolCallId ?? "");
      if (!call) throw invalidRequest(`Invalid value for 'messages[${i}].tool_call_id': no earlier assistant tool call has the id '${m.toolCallId}'.`, `messages[${i}].tool_call_id`, "invalid_value");
      call.result = parsed(m.content);
      pending.delete(m.toolCallId!);
    }
  });
  if (pending.size > 0) throw invalidRequest(`Invalid value for 'messages': the tool call '${[...pending.keys()][0]}' has no 'tool' message with its result.`, "messages", "invalid_value");
  const last = messages.at(-1);
  // After tool results the model continues the turn that called them, and after an
  // assistant message (prefill) that message; otherwise an empty model item opens the turn
  // the reply goes into. node-llama-cpp renders the last model item open, without its end.
  if (last?.role !== "tool" && last?.role !== "assistant") history.push({type: "model", response: []});
  return history;
}
