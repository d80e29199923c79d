import {createHash} from "node:crypto";

/** What the router reads of a request body; everything else passes through untouched. */
export interface RequestFacts {
  /** `model` when the body names one. */
  readonly model: string | undefined;
  readonly stream: boolean;
  /** The prefix PrefixHash keys on; empty when the body has none (then any replica will do). */
  readonly prefix: string;
}

/** Characters of a prompt that make its key: long enough to tell system prompts apart, bounded so hashing stays cheap. */
export const PREFIX_CHARS = 4096;
/**
 * A system prompt at least this long is the key on its own: it is what the KV cache
 * reuses across a tenant's requests, whatever the user asks. A shorter one ("You are a
 * helpful assistant") is shared too widely to matter, so the first user turn joins it
 * and keys the conversation instead.
 */
export const SYSTEM_KEY_CHARS = 512;

type Message = {role?: unknown; content?: unknown};

/** Text of a chat message's content (a string or OpenAI's array of parts). */
function text(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => (p && typeof p === "object" && typeof (p as {text?: unknown}).text === "string" ? (p as {text: string}).text : "")).join("");
  return "";
}

/**
 * The facts of a parsed JSON body. The prefix is what a KV cache can reuse across
 * requests: for chat, the leading system prompt(s), and the first user turn unless the
 * system prompt is long (SYSTEM_KEY_CHARS); for completions, the start of the prompt.
 */
export function requestFacts(body: unknown): RequestFacts {
  if (!body || typeof body !== "object" || Array.isArray(body)) return {model: undefined, stream: false, prefix: ""};
  const b = body as {model?: unknown; stream?: unknown; messages?: unknown; prompt?: unknown};
  const model = typeof b.model === "string" ? b.model : undefined;
  const stream = b.stream === true;
  let prefix = "";
  if (Array.isArray(b.messages)) {
    let system = 0;
    for (const m of b.messages as Message[]) {
      if (!m || typeof m !== "object") break;
      const leadingSystem = (m.role === "system" || m.role === "developer") && system === prefix.length;
      if (!leadingSystem && system >= SYSTEM_KEY_CHARS) break;
      prefix += `${String(m.role)}\u0000${text(m.content)}\u0001`;
      if (leadingSystem) system = prefix.length;
      if (m.role === "user" || prefix.length >= PREFIX_CHARS) break;
    }
  } else prefix = promptPrefix(b.prompt);
  return {model, stream, prefix: prefix.slice(0, PREFIX_CHARS)};
}

/** A legacy prompt's start: its text, or its token ids (as text), or the first of a batch's. */
function promptPrefix(prompt: unknown): string {
  if (typeof prompt === "string") return prompt;
  if (!Array.isArray(prompt)) return "";
  const [first] = prompt as unknown[];
  if (typeof first === "string") return first;
  if (typeof first === "number") return `\u0003${prompt.slice(0, PREFIX_CHARS / 4).join(",")}`;
  return promptPrefix(first);
}

/**
 * The PrefixHash key: the tenant (a hash of the Authorization header, so one tenant's
 * traffic never piles onto the replica another's prompts chose) and the prefix.
 */
export function affinityKey(authorization: string | undefined, prefix: string): string {
  const tenant = authorization ? createHash("sha256").update(authorization).digest("hex").slice(0, 16) : "-";
  return `${tenant}\u0002${prefix}`;
}
