import type {ServerResponse} from "node:http";

/** OpenAI's error body, for the router's own answers. */
export function errorBody(message: string, type: string, code: string, param: string | null = null): string {
  return JSON.stringify({error: {message, type, param, code}});
}

export function sendError(res: ServerResponse, status: number, type: string, code: string, message: string, headers: Record<string, string> = {}, param: string | null = null): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(message, type, code, param);
  res.writeHead(status, {...headers, "content-type": "application/json", "content-length": Buffer.byteLength(body)}).end(body);
}
