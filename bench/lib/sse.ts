/**
 * Reads an OpenAI SSE response as a benchmark client: when the first text arrived and the
 * usage's token counts. Lean on purpose: on 2 cores the client shares a core with the
 * server's event loop, so it parses only the usage event and finds the first text by pattern.
 */
export async function readSse(res: Response, firstText: RegExp): Promise<{firstAt: number | undefined; completionTokens: number; promptTokens: number}> {
  let firstAt: number | undefined;
  let completionTokens = 0;
  let promptTokens = 0;
  let buffered = "";
  const decoder = new TextDecoder();
  for await (const bytes of res.body!) {
    buffered += decoder.decode(bytes as Uint8Array, {stream: true});
    let end: number;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      if (firstAt === undefined && firstText.test(event)) firstAt = performance.now();
      if (event.includes('"usage":{')) ({completion_tokens: completionTokens, prompt_tokens: promptTokens} = (JSON.parse(event.replace(/^data: /, "")) as {usage: {completion_tokens: number; prompt_tokens: number}}).usage);
    }
  }
  return {firstAt, completionTokens, promptTokens};
}
