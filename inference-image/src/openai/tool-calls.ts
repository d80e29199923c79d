import type {Tools} from "../core/request.js";

/**
 * Tool calls as this server generates them: one call, its JSON grammar-constrained. With
 * the function known (named, or the only one) the model writes the arguments object;
 * otherwise `{"name": <one of the names>, "arguments": {...}}`. Pure.
 */

/** Whether the reply is a grammar-constrained call (required, named) rather than the model's choice (auto). */
export const forcedCall = (tools: Tools | undefined): tools is Tools => tools !== undefined && tools.choice.kind !== "auto";

/** The function the reply calls when it is known before generating. */
export function knownFunction(tools: Tools): string | undefined {
  if (tools.choice.kind === "named") return tools.choice.name;
  return tools.functions.length === 1 ? tools.functions[0]!.name : undefined;
}

/** The JSON schema the output grammar enforces for a tool call. */
export function toolCallSchema(tools: Tools): Record<string, unknown> {
  const known = knownFunction(tools);
  if (known) return {...tools.functions.find((f) => f.name === known)!.parameters};
  return {oneOf: tools.functions.map((f) => ({type: "object", properties: {name: {const: f.name}, arguments: f.parameters}}))};
}

const HEADER = /^\s*\{\s*"name"\s*:\s*("(?:[^"\\]|\\.)*")\s*,\s*"arguments"\s*:\s*/;
const TAIL = /\s*\}?\s*$/;

/** What a complete output calls: the function's name and its arguments as JSON text. */
export function toolCallOf(text: string, tools: Tools): {name: string; arguments: string} {
  const known = knownFunction(tools);
  if (known) return {name: known, arguments: text.trim()};
  const m = HEADER.exec(text);
  if (!m) return {name: "", arguments: text.trim()}; // cut before the name was complete
  return {name: JSON.parse(m[1]!) as string, arguments: text.slice(m[0].length).replace(TAIL, "").trim()};
}

/** Pieces of a streamed tool call, as OpenAI streams them: the call's name first, then its arguments in pieces. */
export type ToolCallDelta = {readonly kind: "header"; readonly name: string} | {readonly kind: "arguments"; readonly text: string};

/**
 * Turns generated text, piece by piece, into tool-call deltas. The arguments are sent as
 * they come, holding back only what may be the closing brace of the wrapper object.
 */
export class ToolCallStream {
  #text = "";
  #argsFrom: number | undefined;
  #sent = 0;

  constructor(private readonly tools: Tools) {
    if (knownFunction(tools)) this.#argsFrom = -1;
  }

  push(piece: string): ToolCallDelta[] {
    this.#text += piece;
    const out: ToolCallDelta[] = [];
    if (this.#argsFrom === -1) {
      this.#argsFrom = 0;
      out.push({kind: "header", name: knownFunction(this.tools)!});
    } else if (this.#argsFrom === undefined) {
      const m = HEADER.exec(this.#text);
      if (!m) return out;
      this.#argsFrom = m[0].length;
      out.push({kind: "header", name: JSON.parse(m[1]!) as string});
    }
    let args = this.#text.slice(this.#argsFrom);
    if (this.#sent === 0) {
      // Whitespace before the arguments is not theirs (toolCallOf trims it too).
      const lead = args.length - args.trimStart().length;
      this.#argsFrom += lead;
      args = args.slice(lead);
    }
    // With the name in the output, a trailing "}" may close the wrapper, not the arguments;
    // trailing whitespace waits until more text shows it is inside them.
    const safe = (knownFunction(this.tools) ? args : args.replace(TAIL, "")).trimEnd().length;
    if (safe > this.#sent) {
      out.push({kind: "arguments", text: args.slice(this.#sent, safe)});
      this.#sent = safe;
    }
    return out;
  }
}
