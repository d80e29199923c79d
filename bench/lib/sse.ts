/** What a benchmark client reads from an OpenAI SSE response. */
export interface SseReading {
  firstAt: number | undefined;
  completionTokens: number;
  promptTokens: number;
  cachedTokens: number;
  /** The chat deltas' text, only when asked for (`collectText`). */
  text: string;
}

/**
 * Reads an OpenAI SSE response as a benchmark client: when the first text arrived and the
 * usage's token counts. Lean on purpose: on 2 cores the client shares a core with the
 * server's event loop, so it parses only the usage event and finds the first text by
 * pattern, unless `collectText` asks for the text too (a conversation needs its answers).
 */
export async function readSse(res: Response, firstText: RegExp, collectText = false): Promise<SseReading> {
  const reading: SseReading = {firstAt: undefined, completionTokens: 0, promptTokens: 0, cachedTokens: 0, text: ""};
  let buffered = "";
  const decoder = new TextDecoder();
  for await (const bytes of res.body!) {
    buffered += decoder.decode(bytes as Uint8Array, {stream: true});
    let end: number;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const hasText = firstText.test(event);
      if (reading.firstAt === undefined && hasText) reading.firstAt = performance.now();
      if (collectText && hasText) reading.text += (JSON.parse(event.replace(/^data: /, "")) as {choices: Array<{delta?: {content?: string}}>}).choices[0]?.delta?.content ?? "";
      if (event.includes('"usage":{')) {
        const {usage} = JSON.parse(event.replace(/^data: /, "")) as {usage: {completion_tokens: number; prompt_tokens: number; prompt_tokens_details?: {cached_tokens?: number}}};
        reading.completionTokens = usage.completion_tokens;
        reading.promptTokens = usage.prompt_tokens;
        reading.cachedTokens = usage.prompt_tokens_details?.cached_tokens ?? 0;
      }
    }
  }
  return reading;
}
